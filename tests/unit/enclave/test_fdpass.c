/*
 * Unit tests for src/enclave/fdpass.c: descriptor passing on the control sockets. A message is
 * accepted only with exactly the expected size and number of descriptors; a refused one closes
 * every descriptor it carried (no leak), and a closed peer reads as 0.
 */
#define _GNU_SOURCE
#include "encl_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

static int
open_fds(void)
{
    int count = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        count += de->d_name[0] != '.';
    }
    closedir(d);
    return count - 1; /* the directory's own descriptor */
}

static void
pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void
test_round_trip(void **state)
{
    (void)state;
    int sv[2], fds[2], got[2] = {-1, -1};
    char msg[8];
    pair(sv);
    fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    fds[1] = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    for (size_t n = 0; n <= 2; n++) {
        assert_true(fdpass_send(sv[0], "CLSTTEST", 8, fds, n));
        assert_int_equal(fdpass_recv(sv[1], msg, sizeof(msg), got, n), 8);
        assert_memory_equal(msg, "CLSTTEST", 8);
        for (size_t i = 0; i < n; i++) {
            assert_true(got[i] > 2 && got[i] != fds[i]);
            /* Close-on-exec, and the same open file. */
            assert_true((fcntl(got[i], F_GETFD) & FD_CLOEXEC) != 0);
            close(got[i]);
        }
    }
    assert_false(fdpass_send(sv[0], "x", 1, fds, FDPASS_MAX + 1));
    close(fds[0]);
    close(fds[1]);
    close(sv[0]);
    assert_int_equal(fdpass_recv(sv[1], msg, sizeof(msg), got, 1), 0); /* peer closed */
    close(sv[1]);
}

/* Each malformed message is refused and leaves no descriptor behind. */
static void
test_refusals(void **state)
{
    (void)state;
    struct {
        const char *msg;
        size_t size;
        size_t sent_fds, want_fds;
    } bad[] = {
        {"CLSTTEST", 7, 1, 1},  /* short */
        {"CLSTTEST+", 9, 1, 1}, /* long: truncated on receipt */
        {"CLSTTEST", 8, 0, 1},  /* no descriptor */
        {"CLSTTEST", 8, 2, 1},  /* one too many */
        {"CLSTTEST", 8, 1, 2},  /* one too few */
        {"CLSTTEST", 8, 1, 0},  /* none wanted */
    };
    int fds[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC), open("/dev/null", O_RDONLY | O_CLOEXEC)};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int sv[2], got[2] = {-1, -1};
        char msg[8];
        pair(sv);
        int before = open_fds();
        assert_true(fdpass_send(sv[0], bad[i].msg, bad[i].size, fds, bad[i].sent_fds));
        assert_int_equal(fdpass_recv(sv[1], msg, sizeof(msg), got, bad[i].want_fds), -1);
        assert_int_equal(errno, EPROTO);
        assert_int_equal(open_fds(), before);
        close(sv[0]);
        close(sv[1]);
    }
    close(fds[0]);
    close(fds[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
