/*
 * Descriptor passing on the loader's control sockets (SOCK_SEQPACKET: one request per message):
 * the host's hand-over and fork requests, and the loader's and template's side of them. A message
 * is exactly `size` bytes with exactly `nfds` descriptors, or it is refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enclave/enclave_int.h"

bool
fdpass_send(int sock, const void *msg, size_t size, const int *fds, size_t nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(FDPASS_MAX * sizeof(int))];
    } ctl;
    struct iovec iov = {(void *)(uintptr_t)msg, size};
    struct msghdr mh;
    if (nfds > FDPASS_MAX) {
        errno = EINVAL;
        return false;
    }
    memset(&mh, 0, sizeof(mh));
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    /* Never blocks: a peer that has stopped reading is a peer that does not answer. */
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)size;
}

ssize_t
fdpass_recv(int sock, void *msg, size_t size, int *fds, size_t nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(FDPASS_MAX * sizeof(int))];
    } ctl;
    struct iovec iov = {msg, size};
    struct msghdr mh;
    int got[FDPASS_MAX];
    size_t ngot = 0, nmsgs = 0;
    bool bad = nfds > FDPASS_MAX;
    memset(&mh, 0, sizeof(mh));
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -1;
    }
    /* Every descriptor that arrived is collected, so that a refused message leaks none. */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        nmsgs++;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0)) {
            bad = true;
            continue;
        }
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (ngot < FDPASS_MAX) {
                got[ngot++] = fd;
            } else {
                (void)close(fd);
                bad = true;
            }
        }
    }
    if (n == 0 && nmsgs == 0) {
        return 0; /* the peer closed the socket */
    }
    if (bad || (size_t)n != size || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        nmsgs != (nfds > 0 ? 1u : 0u) || ngot != nfds) {
        for (size_t i = 0; i < ngot; i++) {
            (void)close(got[i]);
        }
        errno = EPROTO;
        return -1;
    }
    memcpy(fds, got, nfds * sizeof(int));
    return n;
}
