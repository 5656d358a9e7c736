# Convenience targets; the build itself is CMake (see README.md).
#   make example   install what is missing, build, run the bundled example
#   make test      install what is missing, build, run every test, then the
#                  same tests again under ASan+UBSan
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps build example test test-release test-asan sdk-example clean pod-helper-image

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON >/dev/null
	ninja -C $(BUILD) -j$(JOBS)

example: build
	bash scripts/run-example.sh $(BUILD)

test-release: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

sdk-example: build
	bash scripts/sdk-example.sh $(BUILD)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON -DKILN_WERROR=ON >/dev/null
	ninja -C $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  KILN_NO_DLCLOSE=1 ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) -LE slow

test: test-release sdk-example test-asan

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The kubernetes executor's helper image (helperImage=): FROM scratch and the
# static kiln-pod-helper of this build. IMAGE names it; ENGINE is docker or
# podman; push it where the cluster pulls from (docs/KUBERNETES.md).
IMAGE ?= kiln-pod-helper:0.1
ENGINE ?= docker
pod-helper-image: build
	printf 'FROM scratch\nCOPY kiln-pod-helper /kiln-pod-helper\nENTRYPOINT ["/kiln-pod-helper"]\n' \
		>$(BUILD)/tools/kiln-pod-helper/Dockerfile.local
	$(ENGINE) build -t $(IMAGE) -f $(BUILD)/tools/kiln-pod-helper/Dockerfile.local $(BUILD)/tools/kiln-pod-helper
