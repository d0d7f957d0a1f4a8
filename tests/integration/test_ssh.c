/* The SSH apps end to end (apps/ssh/README.md): transport discovery, route finder,
 * messaging discovery + server, setup node and three visors A-B-C (stcp A-B and B-C only,
 * so A reaches C over a 2-hop route). C runs SSH with A's key in its authorized-keys file;
 * A and B run SSH-client; all are started by their visors from config (auto_start). A real
 * SSH-cli process on A's side runs commands on C: 1 MiB of known output (SHA-256) with a
 * separate stderr and exit status 7, a command killed by a signal, stdin forwarded both
 * small and larger than the stdin window, a slow reader of 12 MB of output, the remote
 * process group killed when the client goes away (also after the command exited while a
 * background job held its output, and while the command leaves endless stdin unread).
 * Without the network: SSH-cli ends at once on SIGINT while SSH-client dials; a second
 * SSH-client leaves a live socket alone and replaces a stale one. B is not authorized: refused with exit 255 and the server's message.
 * An interactive session runs under a private tmux server: a command, `stty size` before
 * and after resizing the window, then `exit`; another one ends by SIGTERM. Both leave the
 * terminal in its normal mode. */
#include "common/json.h"
#include "common/keys.h"
#include "common/uuid.h"
#include "tests/harness/api_client.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"
#include "tests/harness/net_env.h"
#include "tests/harness/visor_env.h"

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1u << 20)
#define LINE "0123456789abcdef0123456789abcde\n" /* 32 bytes: 32768 lines = 1 MiB */
#define RUN_TIMEOUT_MS 120000
#define TMUX "/usr/bin/tmux"

static struct th_visor va, vb, vc;
static struct th_net net = { .name = "ssh", .with_rf = true, .with_sn = true };
static char tp_ab[SW_UUID_STR_LEN + 1], tp_bc[SW_UUID_STR_LEN + 1];
static char sock_a[600], sock_b[600], auth_file[600], cli_bin[512], tmux_sock[64];
static char *out_buf, err_buf[8192];

/* ---- setup ---------------------------------------------------------------------------------- */

static struct json_object *one_app(const char *name, uint16_t port, const char *const args[])
{
    struct json_object *apps = json_object_new_array();

    json_object_array_add(apps, th_app_entry(name, port, args));
    return apps;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static bool sock_ready(const char *path, int timeout_ms)
{
    struct stat st;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            return true;
        th_sleep_ms(100);
    }
    return false;
}

static void wait_route_finder(void)
{
    char body[400];
    long st = 0;

    snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":1,\"max_hops\":4,\"count\":1}}",
             va.pk_hex, vc.pk_hex);
    for (int i = 0; i < 100 && st != 200; i++) {
        st = th_call(net.http, net.rf_base, "POST", "/routes", body, NULL, NULL);
        if (st != 200)
            th_sleep_ms(200);
    }
    ck_assert_int_eq(st, 200);
}

static void setup(void)
{
    char text[256], log[600];

    out_buf = malloc(2 * MIB);
    ck_assert_ptr_nonnull(out_buf);
    ck_assert_msg(th_net_start(&net), "the services did not start");
    ck_assert_int_eq(th_net_visor_gen(&net, &va, "ssh-a", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vb, "ssh-b", NULL, NULL), 0);
    ck_assert_int_eq(th_net_visor_gen(&net, &vc, "ssh-c", NULL, NULL), 0);

    snprintf(auth_file, sizeof(auth_file), "%s/ssh-authorized-keys", net.dir);
    snprintf(text, sizeof(text), "# who may log in to C\n\n%s  # visor A\n", va.pk_hex);
    write_file(auth_file, text, strlen(text));
    ck_assert_int_eq(th_visor_set_apps(&vc, one_app("SSH", 2, (const char *const[]){ "-auth", auth_file, NULL })),
                     0);
    ck_assert_int_eq(th_visor_set_apps(&va, one_app("SSH-client", 12, NULL)), 0);
    ck_assert_int_eq(th_visor_set_apps(&vb, one_app("SSH-client", 12, NULL)), 0);
    snprintf(sock_a, sizeof(sock_a), "%s/ssh-client.sock", va.data_dir);
    snprintf(sock_b, sizeof(sock_b), "%s/ssh-client.sock", vb.data_dir);
    snprintf(cli_bin, sizeof(cli_bin), "%s", th_bin("SSH-cli"));

    ck_assert_int_eq(th_visor_start(&va), 0);
    ck_assert_int_eq(th_visor_start(&vb), 0);
    ck_assert_int_eq(th_visor_start(&vc), 0);
    ck_assert(th_net_wait_ready(&net, &va, 15000) && th_net_wait_ready(&net, &vb, 15000) &&
              th_net_wait_ready(&net, &vc, 15000));
    ck_assert_int_eq(th_net_add_stcp(&net, &va, &vb, tp_ab), 201);
    ck_assert_int_eq(th_net_add_stcp(&net, &vb, &vc, tp_bc), 201);
    wait_route_finder();

    snprintf(log, sizeof(log), "%s/SSH.log", vc.data_dir);
    ck_assert_msg(th_log_wait(log, "listening on app port 2", 15000), "SSH did not start");
    ck_assert_msg(sock_ready(sock_a, 15000), "A's SSH-client did not listen on %s", sock_a);
    ck_assert_msg(sock_ready(sock_b, 15000), "B's SSH-client did not listen on %s", sock_b);
    snprintf(tmux_sock, sizeof(tmux_sock), "sw-ssh-test-%d", (int)getpid());
}

/* Stops the private tmux server (if still running) and removes its socket file, which a
 * server that exited by itself leaves behind. */
static void tmux_kill_server(void)
{
    const char *argv[] = { TMUX, "-L", tmux_sock, "kill-server", NULL };
    const char *dir = getenv("TMUX_TMPDIR");
    char path[600];

    th_run(argv, NULL, 0, NULL, 0, 10000);
    snprintf(path, sizeof(path), "%s/tmux-%u/%s", dir && *dir ? dir : "/tmp", (unsigned)getuid(), tmux_sock);
    unlink(path);
}

static void teardown(void)
{
    if (tmux_sock[0])
        tmux_kill_server();
    th_net_stop(&net, (struct th_visor *const[]){ &va, &vb, &vc }, 3);
    free(out_buf);
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* SSH-cli -sock sock PK(C) cmd with stdin from in_path; stdout into out_buf, stderr into
 * err_buf. Returns SSH-cli's exit status (-1: timed out). */
static int ssh_run(const char *sock, const char *cmd, const char *in_path)
{
    const char *argv[] = { "/bin/sh", "-c", "exec \"$0\" -sock \"$1\" \"$2\" \"$3\" < \"$4\"",
                           cli_bin, sock, vc.pk_hex, cmd, in_path ? in_path : "/dev/null", NULL };
    int rc = th_run(argv, out_buf, 2 * MIB, err_buf, sizeof(err_buf), RUN_TIMEOUT_MS);
    if (rc != 0)
        fprintf(stderr, "SSH-cli '%s': exit %d, stderr: %s\n", cmd, rc, err_buf);
    return rc;
}

static bool sha_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    uint8_t ha[32], hb[32];
    crypto_hash_sha256(ha, a, alen);
    crypto_hash_sha256(hb, b, blen);
    return alen == blen && memcmp(ha, hb, 32) == 0;
}

/* Processes whose command line is exactly argv0 arg1 (scanning /proc). */
static int count_procs(const char *argv0, const char *arg1)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d))) {
        char path[300], cl[256];
        size_t len;
        FILE *f;

        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        if (!(f = fopen(path, "rb")))
            continue;
        len = fread(cl, 1, sizeof(cl) - 1, f);
        fclose(f);
        cl[len] = '\0';
        if (strcmp(cl, argv0) == 0 && len > strlen(argv0) + 1 &&
            strcmp(cl + strlen(argv0) + 1, arg1) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- tests: commands ------------------------------------------------------------------------ */

START_TEST(test_exec_1mib_and_exit_status)
{
    static char want[MIB];
    size_t got;
    int64_t t0 = sw_mono_ms();
    int rc;

    for (size_t i = 0; i < MIB; i += sizeof(LINE) - 1)
        memcpy(want + i, LINE, sizeof(LINE) - 1);
    rc = ssh_run(sock_a, "yes " "0123456789abcdef0123456789abcde" " | head -c 1048576; "
                         "echo to-stderr >&2; exit 7", NULL);
    got = strlen(out_buf);
    ck_assert_int_eq(rc, 7);
    ck_assert_msg(sha_equal(out_buf, got, want, MIB), "stdout: %zu bytes, want 1 MiB of known content", got);
    ck_assert_str_eq(err_buf, "to-stderr\n");
    printf("ssh: 1 MiB over 2 hops (A-B-C) in %llu ms, with route setup\n",
           (unsigned long long)sw_ms_since(t0));
    fflush(stdout);
}
END_TEST

START_TEST(test_stdout_stderr_separate)
{
    ck_assert_int_eq(ssh_run(sock_a, "echo out1; echo err1 >&2; echo out2; echo err2 >&2", NULL), 0);
    ck_assert_str_eq(out_buf, "out1\nout2\n");
    ck_assert_str_eq(err_buf, "err1\nerr2\n");
    /* the user's environment: no visor variables leak into the session */
    ck_assert_int_eq(ssh_run(sock_a, "env | grep -c ^SKYWIRE_ || true", NULL), 0);
    ck_assert_str_eq(out_buf, "0\n");
}
END_TEST

START_TEST(test_killed_by_signal)
{
    ck_assert_int_eq(ssh_run(sock_a, "echo before; kill -TERM $$; echo after", NULL), 128 + SIGTERM);
    ck_assert_str_eq(out_buf, "before\n");
    ck_assert_int_eq(ssh_run(sock_a, "kill -KILL $$", NULL), 128 + SIGKILL);
}
END_TEST

START_TEST(test_stdin_forwarded)
{
    char small[600], big_path[600], num[32];
    enum { BIG = 3 * 256 * 1024 + 12345 }; /* over the 256 KiB stdin window */
    static char big[BIG];

    snprintf(small, sizeof(small), "%s/ssh-stdin-small", net.dir);
    write_file(small, "hello\nworld\n", 12);
    ck_assert_int_eq(ssh_run(sock_a, "cat", small), 0);
    ck_assert_str_eq(out_buf, "hello\nworld\n");
    ck_assert_int_eq(ssh_run(sock_a, "wc -c", small), 0);
    ck_assert_str_eq(out_buf, "12\n");

    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    snprintf(big_path, sizeof(big_path), "%s/ssh-stdin-big", net.dir);
    write_file(big_path, big, BIG);
    ck_assert_int_eq(ssh_run(sock_a, "wc -c", big_path), 0);
    snprintf(num, sizeof(num), "%d\n", BIG);
    ck_assert_str_eq(out_buf, num);
    ck_assert_int_eq(ssh_run(sock_a, "cat", big_path), 0); /* both directions at once */
    ck_assert(sha_equal(out_buf, strlen(out_buf), big, BIG));
    /* a command that does not read its stdin still ends */
    ck_assert_int_eq(ssh_run(sock_a, "echo ignored", big_path), 0);
    ck_assert_str_eq(out_buf, "ignored\n");
    unlink(small);
    unlink(big_path);
}
END_TEST

/* A client that reads slowly still gets all of a command's output, also the part still
 * in flight when the command has exited: 900 kB fit in what the route buffers, 12 MB do not
 * (the route holds the server back, which stops reading the command's output). */
START_TEST(test_slow_reader_gets_everything)
{
    const char *argv[] = { "/bin/sh", "-c",
                           "\"$0\" -sock \"$1\" \"$2\" \"head -c $3 /dev/zero\" </dev/null | (sleep 4; wc -c)",
                           cli_bin, sock_a, vc.pk_hex, "900000", NULL };
    ck_assert_int_eq(th_run(argv, out_buf, 2 * MIB, err_buf, sizeof(err_buf), RUN_TIMEOUT_MS), 0);
    ck_assert_str_eq(out_buf, "900000\n");
    argv[6] = "12000000";
    ck_assert_int_eq(th_run(argv, out_buf, 2 * MIB, err_buf, sizeof(err_buf), RUN_TIMEOUT_MS), 0);
    ck_assert_str_eq(out_buf, "12000000\n");
}
END_TEST

/* No command and stdin not a terminal (as ssh -T): the remote shell runs without a PTY and
 * reads its commands from stdin; its exit status comes back. */
START_TEST(test_shell_without_terminal)
{
    const char *argv[] = { "/bin/sh", "-c", "printf 'echo $((6*7))\\nexit 5\\n' | \"$0\" -sock \"$1\" \"$2\"",
                           cli_bin, sock_a, vc.pk_hex, NULL };
    ck_assert_int_eq(th_run(argv, out_buf, 2 * MIB, err_buf, sizeof(err_buf), RUN_TIMEOUT_MS), 5);
    ck_assert_str_eq(out_buf, "42\n");
    ck_assert_ptr_nonnull(strstr(err_buf, "not a terminal"));
}
END_TEST

START_TEST(test_unauthorized_refused)
{
    char log[600];

    ck_assert_int_eq(ssh_run(sock_b, "echo should-not-run", NULL), 255);
    ck_assert_str_eq(out_buf, "");
    ck_assert_msg(strstr(err_buf, "is not authorized") && strstr(err_buf, vb.pk_hex),
                  "stderr: %s", err_buf);
    snprintf(log, sizeof(log), "%s/SSH.log", vc.data_dir);
    ck_assert(th_log_wait(log, "not an authorized key", 5000));
    /* a wrong port: the connection error, also 255 */
    {
        const char *argv[] = { cli_bin, "-sock", sock_a, "-port", "9", vc.pk_hex, "true", NULL };
        ck_assert_int_eq(th_run(argv, out_buf, 2 * MIB, err_buf, sizeof(err_buf), RUN_TIMEOUT_MS), 255);
        ck_assert_msg(strstr(err_buf, "SSH-cli: "), "stderr: %s", err_buf);
    }
    /* no SSH-client at the socket */
    ck_assert_int_eq(ssh_run("/nonexistent/ssh-client.sock", "true", NULL), 255);
    ck_assert_msg(strstr(err_buf, "cannot reach SSH-client"), "stderr: %s", err_buf);
}
END_TEST

START_TEST(test_disconnect_kills_process_group)
{
    const char *argv[] = { cli_bin, "-sock", sock_a, vc.pk_hex, "sleep 3001 & sleep 3001; wait", NULL };
    char log[600];
    pid_t pid = th_spawn(argv, NULL, th_log_path("ssh-disconnect-cli.log"));
    int n = 0;

    ck_assert_int_gt(pid, 0);
    for (int i = 0; i < 600 && (n = count_procs("sleep", "3001")) < 2; i++)
        th_sleep_ms(100);
    ck_assert_int_eq(n, 2);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 150 && (n = count_procs("sleep", "3001")) > 0; i++)
        th_sleep_ms(100);
    ck_assert_msg(n == 0, "%d remote processes survived the client", n);
    snprintf(log, sizeof(log), "%s/SSH.log", vc.data_dir);
    ck_assert(th_log_wait(log, "the client went away", 5000));
}
END_TEST

/* A command that never reads its stdin while the client has endless stdin to send: the client
 * keeps at most the stdin window in flight, the server keeps reading the route connection,
 * so it sees the client go away (its EOF is not stuck behind unread stdin) and kills the
 * command. */
START_TEST(test_disconnect_with_unread_stdin)
{
    const char *argv[] = { "/bin/sh", "-c", "exec \"$0\" -sock \"$1\" \"$2\" 'sleep 3003' </dev/zero",
                           cli_bin, sock_a, vc.pk_hex, NULL };
    char log[600];
    pid_t pid;
    int n = 0, gone;

    snprintf(log, sizeof(log), "%s/SSH.log", vc.data_dir);
    gone = th_log_count(log, "the client went away");
    pid = th_spawn(argv, NULL, th_log_path("ssh-disconnect-stdin-cli.log"));
    ck_assert_int_gt(pid, 0);
    for (int i = 0; i < 600 && (n = count_procs("sleep", "3003")) < 1; i++)
        th_sleep_ms(100);
    ck_assert_int_eq(n, 1);
    th_sleep_ms(1000); /* the window fills */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 150 && (n = count_procs("sleep", "3003")) > 0; i++)
        th_sleep_ms(100);
    ck_assert_msg(n == 0, "the remote command survived the client");
    for (int i = 0; i < 50 && th_log_count(log, "the client went away") == gone; i++)
        th_sleep_ms(100);
    ck_assert_int_eq(th_log_count(log, "the client went away"), gone + 1);
}
END_TEST

/* The shell exits at once, a background job holds its stdout (the server drains it), and the
 * client goes away meanwhile: the job is killed with the group, not left running. */
START_TEST(test_disconnect_after_exit_kills_group)
{
    const char *argv[] = { cli_bin, "-sock", sock_a, vc.pk_hex, "sleep 3002 & echo started", NULL };
    const char *out = th_log_path("ssh-disconnect-after-exit-cli.log");
    pid_t pid = th_spawn(argv, NULL, out);
    int n = 0;

    ck_assert_int_gt(pid, 0);
    ck_assert_msg(th_log_wait(out, "started", 60000), "the command did not run");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 100 && (n = count_procs("sleep", "3002")) > 0; i++)
        th_sleep_ms(100);
    ck_assert_msg(n == 0, "%d remote processes survived the client", n);
}
END_TEST

/* ---- tests: interactive under tmux ---------------------------------------------------------- */

static int tmux(const char *const args[], char *out, size_t cap)
{
    const char *argv[16] = { TMUX, "-L", tmux_sock, "-f", "/dev/null" };
    size_t n = 5;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return th_run(argv, out, cap, NULL, 0, 10000);
}

/* True once the pane of session sess shows the line want (trailing blanks ignored). */
static bool pane_has_line(const char *sess, const char *want, int timeout_ms)
{
    static char screen[65536];
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        if (tmux((const char *const[]){ "capture-pane", "-p", "-t", sess, NULL }, screen, sizeof(screen)) == 0) {
            for (char *line = strtok(screen, "\n"); line; line = strtok(NULL, "\n")) {
                size_t n = strlen(line);
                while (n > 0 && line[n - 1] == ' ')
                    line[--n] = '\0';
                if (strcmp(line, want) == 0)
                    return true;
            }
        }
        th_sleep_ms(200);
    }
    return false;
}

static void type_line(const char *sess, const char *text)
{
    tmux((const char *const[]){ "send-keys", "-t", sess, "-l", text, NULL }, NULL, 0);
    tmux((const char *const[]){ "send-keys", "-t", sess, "Enter", NULL }, NULL, 0);
}

/* Types cmd + Enter until the pane shows want (keys typed before the remote shell is ready
 * may be lost, so retry a few times). */
static bool type_until(const char *sess, const char *cmd, const char *want)
{
    for (int i = 0; i < 4; i++) {
        type_line(sess, cmd);
        if (pane_has_line(sess, want, 5000))
            return true;
    }
    return false;
}

/* Starts SSH-cli (interactive, to C through A) in a new detached 120x40 tmux session. When
 * it ends, the pane's shell saves the terminal's mode (`stty -a`) to stty_path, then the exit
 * status to rc_path (each written whole, by rename). */
static void tmux_start(const char *sess, char rc_path[600], char stty_path[600])
{
    char cmd[4096];
    int rc = -1;

    snprintf(rc_path, 600, "%s/%s-rc", net.dir, sess);
    snprintf(stty_path, 600, "%s/%s-stty", net.dir, sess);
    unlink(rc_path);
    unlink(stty_path);
    snprintf(cmd, sizeof(cmd), "'%s' -sock '%s' %s; rc=$?; stty -a > '%s.t'; mv '%s.t' '%s'; "
             "echo $rc > '%s.t'; mv '%s.t' '%s'", cli_bin, sock_a, vc.pk_hex, stty_path,
             stty_path, stty_path, rc_path, rc_path, rc_path);
    /* the server of the previous test's session may still be exiting (its last session ended):
     * a client that reaches it then fails ("server exited unexpectedly"); the next one starts a
     * new server */
    for (int i = 0; i < 20 && rc != 0; i++) {
        if (i > 0)
            th_sleep_ms(100);
        rc = tmux((const char *const[]){ "new-session", "-d", "-s", sess, "-x", "120", "-y", "40", cmd, NULL },
                  NULL, 0);
    }
    ck_assert_int_eq(rc, 0);
}

/* Waits (bounded) for SSH-cli to end; checks its status and that the terminal is back in
 * its normal (canonical, echoing) mode. */
static void expect_end(const char *rc_path, const char *stty_path, const char *want_rc)
{
    char rc_text[16] = "", mode[4096] = "";
    FILE *f = NULL;
    size_t n;

    for (int i = 0; i < 150 && !(f = fopen(rc_path, "r")); i++)
        th_sleep_ms(100);
    ck_assert_msg(f != NULL, "SSH-cli did not end");
    if (!fgets(rc_text, sizeof(rc_text), f))
        rc_text[0] = '\0';
    fclose(f);
    ck_assert_str_eq(rc_text, want_rc);
    ck_assert_ptr_nonnull(f = fopen(stty_path, "r"));
    n = fread(mode, 1, sizeof(mode) - 1, f);
    mode[n] = '\0';
    fclose(f);
    ck_assert_msg(strstr(mode, " icanon") && strstr(mode, " echo "), "terminal left raw: %s", mode);
}

START_TEST(test_interactive_tmux)
{
    char rc_path[600], stty_path[600], log[600];

    tmux_start("sw", rc_path, stty_path);
    snprintf(log, sizeof(log), "%s/SSH.log", vc.data_dir);
    ck_assert_msg(th_log_wait(log, "shell on a PTY", 60000), "no shell session started");
    th_sleep_ms(300);
    ck_assert_msg(type_until("sw", "echo $((6*7))", "42"), "no 42 on the screen");
    ck_assert_msg(type_until("sw", "echo S1 $(stty size)", "S1 40 120"), "stty size before the resize");
    ck_assert_int_eq(tmux((const char *const[]){ "resize-window", "-t", "sw", "-x", "100", "-y", "30", NULL },
                          NULL, 0), 0);
    ck_assert_msg(type_until("sw", "echo S2 $(stty size)", "S2 30 100"), "stty size after the resize");
    type_line("sw", "exit");
    expect_end(rc_path, stty_path, "0\n");
}
END_TEST

/* SSH-cli's first child of the pane's shell (the pane runs `sh -c 'SSH-cli ...; ...'`). */
static pid_t pane_cli_pid(const char *sess)
{
    char out[64], path[96], kids[256] = "";
    FILE *f;
    long sh;

    if (tmux((const char *const[]){ "display-message", "-p", "-t", sess, "#{pane_pid}", NULL }, out,
             sizeof(out)) != 0 || (sh = strtol(out, NULL, 10)) <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", sh, sh);
    if ((f = fopen(path, "r"))) {
        if (!fgets(kids, sizeof(kids), f))
            kids[0] = '\0';
        fclose(f);
    }
    return (pid_t)strtol(kids, NULL, 10);
}

/* SIGTERM on an interactive SSH-cli: it exits 143 with the terminal restored. */
START_TEST(test_interactive_sigterm_restores_tty)
{
    char rc_path[600], stty_path[600];
    pid_t pid;

    tmux_start("sw2", rc_path, stty_path);
    ck_assert_msg(type_until("sw2", "echo $((7*8))", "56"), "no 56 on the screen");
    pid = pane_cli_pid("sw2");
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    expect_end(rc_path, stty_path, "143\n");
}
END_TEST

/* ---- tests: local, no network ------------------------------------------------------------- */

/* Waits up to ms for pid to exit: its wait status, or -1 (it is killed then). */
static int wait_exit(pid_t pid, int ms)
{
    int64_t end = sw_deadline_ms(ms);
    int st;

    do {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        th_sleep_ms(50);
    } while (sw_mono_ms() < end);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static bool connectable(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    bool ok;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Ctrl-C while SSH-client is still dialing (up to minutes) ends SSH-cli at once with 130. */
START_TEST(test_cli_interrupt_while_dialing)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[] = "/tmp/sw-ssh-cli-XXXXXX", hex[SW_PK_HEX_LEN + 1];
    uint8_t req[64];
    struct sw_keypair kp;
    struct pollfd pf;
    int lfd, c, st;
    pid_t pid;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ssh-client.sock", dir);
    lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(sw_keypair_generate(&kp), SW_OK);
    sw_pk_to_hex(&kp.pk, hex);
    sw_keypair_wipe(&kp);
    {
        const char *argv[] = { th_bin("SSH-cli"), "-sock", sa.sun_path, hex, "true", NULL };
        pid = th_spawn(argv, NULL, th_log_path("ssh-cli-interrupt.log"));
    }
    ck_assert_int_gt(pid, 0);
    pf = (struct pollfd){ .fd = lfd, .events = POLLIN };
    ck_assert_int_eq(poll(&pf, 1, 10000), 1);
    c = accept(lfd, NULL, NULL);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(recv(c, req, sizeof(req), 0), 35); /* the request; no answer */
    th_sleep_ms(200);
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    st = wait_exit(pid, 3000);
    ck_assert_msg(st != -1, "SSH-cli ignored SIGINT while waiting for SSH-client");
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130);
    close(c);
    close(lfd);
    unlink(sa.sun_path);
    rmdir(dir);
}
END_TEST

/* A second SSH-client on the same socket path leaves the running one alone (exit 1); a stale
 * socket file (its owner killed) is replaced. */
START_TEST(test_client_socket_in_use)
{
    char dir[] = "/tmp/sw-ssh-sock-XXXXXX", path[128];
    const char *argv[] = { th_bin("SSH-client"), "-sock", path, NULL };
    pid_t first, second, third;
    bool up = false;
    int st;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ssh-client.sock", dir);
    first = th_spawn(argv, NULL, th_log_path("ssh-client-first.log"));
    ck_assert_int_gt(first, 0);
    ck_assert(sock_ready(path, 10000));
    second = th_spawn(argv, NULL, th_log_path("ssh-client-second.log"));
    ck_assert_int_gt(second, 0);
    st = wait_exit(second, 5000);
    ck_assert_msg(st != -1, "a second SSH-client took over the socket of a running one");
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert(connectable(path));
    kill(first, SIGKILL);
    waitpid(first, NULL, 0);
    ck_assert(!connectable(path)); /* stale: the file is left behind */
    third = th_spawn(argv, NULL, th_log_path("ssh-client-third.log"));
    ck_assert_int_gt(third, 0);
    for (int i = 0; i < 100 && !(up = connectable(path)); i++)
        th_sleep_ms(50);
    ck_assert_msg(up, "SSH-client did not replace a stale socket");
    th_stop(third, 5000);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *ssh_suite(void)
{
    Suite *s = suite_create("ssh");
    TCase *tc = tcase_create("ssh");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_exec_1mib_and_exit_status);
    tcase_add_test(tc, test_stdout_stderr_separate);
    tcase_add_test(tc, test_killed_by_signal);
    tcase_add_test(tc, test_stdin_forwarded);
    tcase_add_test(tc, test_slow_reader_gets_everything);
    tcase_add_test(tc, test_shell_without_terminal);
    tcase_add_test(tc, test_unauthorized_refused);
    tcase_add_test(tc, test_disconnect_kills_process_group);
    tcase_add_test(tc, test_disconnect_after_exit_kills_group);
    tcase_add_test(tc, test_disconnect_with_unread_stdin);
    tcase_add_test(tc, test_interactive_tmux);
    tcase_add_test(tc, test_interactive_sigterm_restores_tty);
    suite_add_tcase(s, tc);
    tc = tcase_create("local");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cli_interrupt_while_dialing);
    tcase_add_test(tc, test_client_socket_in_use);
    suite_add_tcase(s, tc);
    return s;
}

const struct th_check_main th_check_main = {
    .suite = ssh_suite,
    .fork = CK_NOFORK,
    .before = th_check_init_crypto_http,
};
