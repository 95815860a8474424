/* Static memory workload for the e2e images. Usage:
 *   memhog hog <step_mib>     allocate and touch step_mib MiB every 10 ms until killed (OOM)
 *   memhog hold <mib>         allocate and touch mib MiB once, then sleep until SIGTERM
 *   memhog fill <mib> <ms>    touch 1 MiB every <ms> ms until mib MiB, then sleep until SIGTERM
 *                             (a start-up fill: a cache warming to its size)
 *   memhog sleep              touch nothing, sleep until SIGTERM
 * Pages are written (not just reserved) so they are charged to the memory cgroup. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static void touch(size_t mib) {
  size_t bytes = mib << 20;
  /* volatile: the pages must really be written (the compiler may drop unused malloc). */
  volatile char* p = malloc(bytes);
  if (p == NULL) _exit(3);
  for (size_t i = 0; i < bytes; i += 4096) p[i] = (char)(i >> 12);
}

int main(int argc, char** argv) {
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  const char* mode = argc > 1 ? argv[1] : "sleep";
  long n = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
  if (strcmp(mode, "hog") == 0) {
    if (n <= 0) n = 4;
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (;;) {
      touch((size_t)n);
      nanosleep(&ts, NULL);
    }
  }
  if (strcmp(mode, "hold") == 0 && n > 0) touch((size_t)n);
  if (strcmp(mode, "fill") == 0 && n > 0) {
    long ms = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
    if (ms <= 0) ms = 1000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    for (long i = 0; i < n; ++i) {
      touch(1);
      nanosleep(&ts, NULL);
    }
  }
  for (;;) pause();
  return 0;
}
