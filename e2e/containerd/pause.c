/* Static pause process for the e2e sandbox image: sleeps until SIGTERM/SIGINT, reaps children
 * (it is PID 1 of the pod's PID namespace when one is shared). Written for Tapio's e2e harness. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}
static void on_chld(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGCHLD, on_chld);
  for (;;) pause();
  return 0;
}
