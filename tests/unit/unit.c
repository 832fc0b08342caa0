/*
 * unit.c — runner for tests registered with TEST() (see unit.h).
 * Usage: test_x [name-substring]. Each test runs in a fork with a 20 s alarm.
 */
#include "unit.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNIT_MAX 512

static struct {
    const char *name;
    unit_fn_t fn;
} tests[UNIT_MAX];
static int ntests;

void unit_register(const char *name, unit_fn_t fn)
{
    if (ntests < UNIT_MAX) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

    for (int i = 0; i < ntests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            tests[i].fn();
            fflush(NULL);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
            printf("ok   %s.%s\n", prog, tests[i].name);
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("FAIL %s.%s (signal %d%s)\n", prog, tests[i].name,
                       WTERMSIG(status), WTERMSIG(status) == SIGALRM ? ", timeout" : "");
            else
                printf("FAIL %s.%s (exit %d)\n", prog, tests[i].name, WEXITSTATUS(status));
        }
    }
    printf("%s: %d passed, %d failed\n", prog, passed, failed);
    return failed ? 1 : 0;
}
