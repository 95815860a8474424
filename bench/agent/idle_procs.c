/* idle-procs N: forks N children that sleep in pause() until killed; prints "ready" when all
 * exist, then waits for SIGTERM/SIGINT and kills them. A load for the agent's memory benchmark:
 * N processes the task iterator sees on every pass. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char** argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
  pid_t* kids = calloc((size_t)n, sizeof(pid_t));
  if (kids == NULL || n <= 0) return 2;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  for (long i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p < 0) {
      perror("fork");
      n = i;
      break;
    }
    if (p == 0) {
      signal(SIGTERM, SIG_DFL);
      for (;;) pause();
    }
    kids[i] = p;
  }
  printf("ready %ld\n", n);
  fflush(stdout);
  while (!stop) pause();
  for (long i = 0; i < n; ++i) kill(kids[i], SIGKILL);
  while (wait(NULL) > 0) {
  }
  return 0;
}
