/* A deliberately broken libc for the mutation test: every close() of a TCP socket becomes an
 * abortive close (SO_LINGER {1,0}), so it sends RST instead of FIN. Cases whose point is the
 * orderly FIN must go red under it; tests/mutation.rs checks that they do. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

int close(int fd) {
    static int (*real_close)(int);
    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int type = 0;
    socklen_t type_len = sizeof type;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0 &&
        (addr.ss_family == AF_INET || addr.ss_family == AF_INET6) &&
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_STREAM) {
        struct linger abort_now = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
    }
    return real_close(fd);
}
