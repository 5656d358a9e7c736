/* SPDX-License-Identifier: MIT */
/*
 * kiln-mount-exec: runs one command of a step that names Cloud Build
 * volumes, with each volume's directory mounted at its path.
 *
 * kiln starts it in place of the command, so the pid, the process group and
 * the pipes are the step's. It enters a private mount namespace (and, unless
 * it runs as root, a user namespace that maps the caller's uid and gid to
 * themselves, so files keep their owner), builds under ROOT a view of this
 * machine's file tree in which every volume path exists, pivots into it and
 * execs the command.
 *
 * Nothing it mounts is seen outside the command and its children, and it
 * never writes to this machine's directories: a volume path whose parents do
 * not exist here is made in a tmpfs laid over its nearest existing parent,
 * with that parent's entries bound back in (what bubblewrap does for a whole
 * root). As in a container, files a command writes into such a tmpfs (say
 * /root when a volume is at /root/.m2) end with the command.
 *
 * Usage: kiln-mount-exec --root DIR [--cwd DIR] [--vol SRC DST]... -- CMD [ARG]...
 *        kiln-mount-exec --probe --root DIR
 * ROOT is an empty directory of kiln's. Exit status: 125 when the namespace
 * or a mount cannot be made (the reason is on stderr), otherwise the
 * command's, 126 or 127 when it cannot be run: the codes of `docker run`.
 *
 * No libraries beyond libc: it runs once per process of such a step.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "path.h"

#define SETUP_FAILED 125

struct vol {
    const char *src;
    char dst[PATH_MAX];  /* cleaned, symlinks of existing parents resolved */
    char shadow[PATH_MAX]; /* nearest existing parent to lay a tmpfs over, or "" */
};

static char newroot[PATH_MAX];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char msg[PATH_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "kiln: volumes: %s\n", msg);
    _exit(SETUP_FAILED); /* no exit handlers: a leak checker must not change the status */
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr, "usage: kiln-mount-exec --root DIR [--cwd DIR] [--vol SRC DST]... -- CMD [ARG]...\n"
                    "       kiln-mount-exec --probe --root DIR\n"
                    "kiln runs this for steps that name volumes; it is not meant to be run by hand.\n");
    _exit(2);
}

/* NEWROOT + PATH, or die. */
static void under_root(char *out, const char *path)
{
    if ((size_t)snprintf(out, PATH_MAX, "%s%s", newroot, strcmp(path, "/") ? path : "") >= PATH_MAX)
        die("path too long: %s", path);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return; /* /proc/self/setgroups before Linux 3.19 */
        die("cannot open %s: %s", path, strerror(errno));
    }
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    if (n != (ssize_t)strlen(text))
        die("cannot write %s: %s", path, strerror(e));
}

static void enter_namespace(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int flags = CLONE_NEWNS | (uid ? CLONE_NEWUSER : 0);
    if (unshare(flags) != 0) {
        int e = errno;
        die("this machine does not let kiln make a private mount namespace (unshare: %s)%s",
            strerror(e),
            uid && (e == EPERM || e == ENOSPC || e == EACCES)
                ? "; unprivileged user namespaces are turned off (see sysctl user.max_user_namespaces, "
                  "kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_userns)"
                : "");
    }
    if (uid) {
        char map[64];
        write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
        write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
        write_file("/proc/self/gid_map", map);
    }
    /* Nothing mounted from here on may reach the machine's namespace. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("cannot make the mount namespace private: %s", strerror(errno));
}

/* A tmpfs on ROOT that recursive binds skip (so binding "/" does not copy
 * ROOT into itself), holding NEWROOT. */
static void prepare_root(const char *root)
{
    if (mount("kiln-volumes", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
        die("cannot mount a tmpfs on %s: %s", root, strerror(errno));
    if (mount(NULL, root, NULL, MS_UNBINDABLE, NULL) != 0)
        die("cannot make %s unbindable: %s", root, strerror(errno));
    if ((size_t)snprintf(newroot, sizeof newroot, "%s/r", root) >= sizeof newroot)
        die("path too long: %s", root);
    if (mkdir(newroot, 0755) != 0)
        die("cannot create %s: %s", newroot, strerror(errno));
}

/* Where the volume goes, and the tmpfs it needs when its path is missing. */
static void place(struct vol *v, const char *path)
{
    if (path[0] != '/')
        die("volume path \"%s\" is not absolute", path);
    char clean[PATH_MAX], parent[PATH_MAX];
    if (kiln__path_clean(path, clean, sizeof clean) != 0)
        die("volume path too long: %s", path);
    if (!strcmp(clean, "/"))
        die("volume path \"%s\" would hide the whole file tree", path);
    strcpy(parent, clean);
    struct stat st;
    /* The nearest existing parent (or the path itself). */
    while (stat(parent, &st) != 0) {
        char *slash = strrchr(parent, '/');
        if (slash == parent)
            parent[1] = '\0';
        else
            *slash = '\0';
    }
    if (!S_ISDIR(st.st_mode))
        die("volume path \"%s\": %s exists on this machine and is not a directory", path, parent);
    char real[PATH_MAX];
    if (!realpath(parent, real))
        die("volume path \"%s\": cannot resolve %s: %s", path, parent, strerror(errno));
    const char *rest = clean + (strcmp(parent, "/") ? strlen(parent) : 0);
    if ((size_t)snprintf(v->dst, sizeof v->dst, "%s%s", strcmp(real, "/") ? real : "", rest) >=
        sizeof v->dst)
        die("volume path too long: %s", path);
    if (!v->dst[0])
        strcpy(v->dst, "/");
    if (*rest)
        strcpy(v->shadow, real);
    else
        v->shadow[0] = '\0';
}

/* Lay a tmpfs over NEWROOT+DIR and bind DIR's entries back into it. A
 * directory the caller cannot read stays empty, as it looked to them. */
static void shadow(const char *dir)
{
    char target[PATH_MAX], opts[32];
    under_root(target, dir);
    struct stat st;
    if (stat(dir, &st) != 0)
        die("cannot stat %s: %s", dir, strerror(errno));
    snprintf(opts, sizeof opts, "mode=%04o", (unsigned)(st.st_mode & 07777));
    if (mount("kiln-volumes", target, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        die("cannot mount a tmpfs on %s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char src[PATH_MAX], dst[PATH_MAX];
        if ((size_t)snprintf(src, sizeof src, "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name) >=
                sizeof src ||
            (size_t)snprintf(dst, sizeof dst, "%s/%s", target, e->d_name) >= sizeof dst)
            die("path too long under %s", dir);
        struct stat es;
        if (lstat(src, &es) != 0)
            continue; /* gone meanwhile */
        if (S_ISLNK(es.st_mode)) {
            char link[PATH_MAX];
            ssize_t n = readlink(src, link, sizeof link - 1);
            if (n < 0)
                continue;
            link[n] = '\0';
            if (symlink(link, dst) != 0)
                die("cannot recreate the link %s: %s", src, strerror(errno));
            continue;
        }
        if (S_ISDIR(es.st_mode)) {
            if (mkdir(dst, es.st_mode & 07777) != 0)
                die("cannot create %s: %s", dst, strerror(errno));
        } else {
            int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0)
                die("cannot create %s: %s", dst, strerror(errno));
            close(fd);
        }
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
            die("cannot bind %s: %s", src, strerror(errno));
    }
    closedir(d);
}

static void mkdir_p(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            die("cannot create %s: %s", path + strlen(newroot), strerror(errno));
        *p = c;
        if (!c)
            break;
    }
}

static int by_depth(const void *a, const void *b)
{
    const struct vol *x = a, *y = b;
    return kiln__path_depth(x->dst) - kiln__path_depth(y->dst);
}

static int by_shadow_depth(const void *a, const void *b)
{
    const struct vol *x = *(const struct vol *const *)a, *y = *(const struct vol *const *)b;
    return kiln__path_depth(x->shadow) - kiln__path_depth(y->shadow);
}

static void build_view(struct vol *vols, size_t n)
{
    if (mount("/", newroot, NULL, MS_BIND | MS_REC, NULL) != 0)
        die("cannot bind / on %s: %s", newroot, strerror(errno));
    /* Shadows, shallowest first, once each; none inside a volume, where the
     * missing directories are made in the volume as Docker makes them. */
    struct vol **order = calloc(n ? n : 1, sizeof *order);
    if (!order)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = &vols[i];
    qsort(order, n, sizeof *order, by_shadow_depth);
    for (size_t i = 0; i < n; i++) {
        const char *s = order[i]->shadow;
        bool skip = !*s;
        for (size_t j = 0; j < i && !skip; j++)
            skip = !strcmp(order[j]->shadow, s);
        for (size_t j = 0; j < n && !skip; j++)
            skip = kiln__path_under(s, vols[j].dst);
        if (!skip)
            shadow(s);
    }
    free(order);
    qsort(vols, n, sizeof *vols, by_depth);
    for (size_t i = 0; i < n; i++) {
        char target[PATH_MAX];
        under_root(target, vols[i].dst);
        mkdir_p(target);
        if (mount(vols[i].src, target, NULL, MS_BIND | MS_REC, NULL) != 0)
            die("cannot mount %s at %s: %s", vols[i].src, vols[i].dst, strerror(errno));
    }
    if (chdir(newroot) != 0)
        die("cannot enter %s: %s", newroot, strerror(errno));
    /* pivot_root, not chroot: commands may make namespaces of their own
     * (rootless podman, for one), which the kernel refuses under chroot. */
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        die("cannot switch to the new root: pivot_root: %s", strerror(errno));
    umount2(".", MNT_DETACH);
    if (chdir("/") != 0)
        die("cannot enter the new root: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    const char *root = NULL, *cwd = NULL;
    bool probe = false;
    struct vol *vols = calloc((size_t)argc, sizeof *vols);
    const char **dsts = calloc((size_t)argc, sizeof *dsts);
    size_t n = 0;
    int i = 1;
    if (!vols || !dsts)
        die("out of memory");
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else if (!strcmp(argv[i], "--probe")) {
            probe = true;
        } else if (!strcmp(argv[i], "--root") && i + 1 < argc) {
            root = argv[++i];
        } else if (!strcmp(argv[i], "--cwd") && i + 1 < argc) {
            cwd = argv[++i];
        } else if (!strcmp(argv[i], "--vol") && i + 2 < argc) {
            vols[n].src = argv[++i];
            dsts[n++] = argv[++i];
        } else {
            usage();
        }
    }
    if (!root || (!probe && i >= argc))
        usage();
    char here[PATH_MAX];
    if (!cwd) {
        if (!getcwd(here, sizeof here))
            die("cannot tell the working directory: %s", strerror(errno));
        cwd = here;
    }
    for (size_t k = 0; k < n; k++)
        place(&vols[k], dsts[k]);
    enter_namespace();
    prepare_root(root);
    if (probe) {
        free(vols);
        free(dsts);
        return 0;
    }
    build_view(vols, n);
    if (chdir(cwd) != 0)
        die("working directory %s: %s", cwd, strerror(errno));
    execvp(argv[i], argv + i);
    int e = errno;
    fprintf(stderr, "kiln: cannot run '%s': %s\n", argv[i], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}
