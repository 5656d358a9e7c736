#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The repository's copy of the Cloud Build corpus (tests/data/cloudbuild/,
# which test_cloudbuild_corpus.sh, test_volumes.sh and the pipeline fuzzer's
# replay use) is the project's ../shared/corpus/cloudbuild/: the same files,
# byte for byte, and the same MANIFEST.tsv. Needs ../shared: skipped in a
# clone of the repository alone, required in CI (KILN_REQUIRE_SHARED=1).
source "$(dirname "$0")/lib.sh"
need_shared corpus/cloudbuild

SRC=$SHARED/corpus/cloudbuild
COPY=$KILN_SOURCE_DIR/tests/data/cloudbuild
for f in "$SRC"/*.yaml "$SRC/MANIFEST.tsv"; do
    b=$(basename "$f")
    if [ ! -e "$COPY/$b" ]; then
        fail "$b: in $SRC but not in tests/data/cloudbuild/ (copy it there, with its MANIFEST.tsv line)"
    else
        check "$b: the copy is the same" cmp -s "$f" "$COPY/$b"
    fi
done
for f in "$COPY"/*.yaml; do
    b=$(basename "$f")
    [ -e "$SRC/$b" ] || fail "$b: in tests/data/cloudbuild/ but not in $SRC"
done
check "every copied file has a line in MANIFEST.tsv" \
    test "$(ls "$COPY"/*.yaml | wc -l)" = "$(tail -n +2 "$COPY/MANIFEST.tsv" | wc -l)"
finish
