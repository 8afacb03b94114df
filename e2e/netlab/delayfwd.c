/*
 * delayfwd: the lab's user-space link delay and loss (the kernel here has no
 * netem). It attaches to an existing TUN device (IFF_TUN | IFF_NO_PI) in the
 * link namespace, where policy routing sends every packet that arrives from
 * either end into the TUN. Each packet read is dropped with probability
 * `loss`, or stamped with now + delay and kept in a fixed FIFO ring; when it
 * is due it is written back to the TUN, and the kernel routes it on to the
 * other end. One delay for both directions keeps the FIFO in due order.
 *
 * Written for speed: one thread, ppoll with a timeout to the next due packet
 * (CLOCK_MONOTONIC, timer slack -j), no allocation after start, a bounded
 * queue (drop-tail, counted). Rate limits are the kernel's tbf on the veths.
 *
 *   delayfwd -i tun0 -d <one-way delay, us> [-l <loss 0..1>] [-q <slots>] [-s <seed>]
 *            [-j <timer slack, us; default 50>]
 *
 * The counters include how late packets left against their due time (mean
 * and max, us), all of them and the first of each wake-up (a burst that
 * arrived at once is due at once and leaves one write after the other): the
 * forwarder checks its own delay.
 *
 * Prints "ready" once attached; a JSON line of counters on SIGUSR1 and on
 * SIGTERM/SIGINT (then exits 0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define SLOT 2048 /* > the TUN's MTU (1500): a longer packet is counted and dropped */

struct slot {
  uint64_t due;
  uint32_t len;
  uint32_t pad;
  unsigned char data[SLOT];
};

static volatile sig_atomic_t want_stats, want_exit;
static void on_sig(int s) {
  if (s == SIGUSR1)
    want_stats = 1;
  else
    want_exit = 1;
}

static inline uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t rng;
static inline uint64_t next_rand(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

static struct {
  uint64_t rx, tx, lost, qdrop, toolong, werr, rxbytes, txbytes, maxq, late_sum, late_max, wakes, wake_late_sum,
      wake_late_max;
} st;

static void print_stats(uint64_t count) {
  printf("{\"rx\":%llu,\"tx\":%llu,\"lost\":%llu,\"queueDrops\":%llu,\"tooLong\":%llu,"
         "\"writeErrors\":%llu,\"rxBytes\":%llu,\"txBytes\":%llu,\"maxQueue\":%llu,\"queued\":%llu,"
         "\"lateUsMean\":%.1f,\"lateUsMax\":%.1f,\"wakeLateUsMean\":%.1f,\"wakeLateUsMax\":%.1f}\n",
         (unsigned long long)st.rx, (unsigned long long)st.tx, (unsigned long long)st.lost,
         (unsigned long long)st.qdrop, (unsigned long long)st.toolong,
         (unsigned long long)st.werr, (unsigned long long)st.rxbytes,
         (unsigned long long)st.txbytes, (unsigned long long)st.maxq,
         (unsigned long long)count, st.tx ? (double)st.late_sum / (double)st.tx / 1000.0 : 0.0,
         (double)st.late_max / 1000.0,
         st.wakes ? (double)st.wake_late_sum / (double)st.wakes / 1000.0 : 0.0,
         (double)st.wake_late_max / 1000.0);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *dev = "tun0";
  double delay_us = 0, loss = 0;
  unsigned long cap = 32768;
  uint64_t seed = 0;
  unsigned long slack_us = 50;
  int o;
  while ((o = getopt(argc, argv, "i:d:l:q:s:j:")) != -1) {
    switch (o) {
    case 'i': dev = optarg; break;
    case 'd': delay_us = atof(optarg); break;
    case 'l': loss = atof(optarg); break;
    case 'q': cap = strtoul(optarg, NULL, 10); break;
    case 's': seed = strtoull(optarg, NULL, 10); break;
    case 'j': slack_us = strtoul(optarg, NULL, 10); break;
    default:
      fprintf(stderr, "usage: %s -i dev -d delay_us [-l loss] [-q slots] [-s seed] [-j slack_us]\n",
              argv[0]);
      return 2;
    }
  }
  if (delay_us < 0 || loss < 0 || loss > 1 || cap < 1) {
    fprintf(stderr, "delayfwd: bad arguments\n");
    return 2;
  }
  const uint64_t delay = (uint64_t)(delay_us * 1000.0);
  /* loss compared against the top 53 bits of a random draw */
  const uint64_t loss_thresh = (uint64_t)(loss * 9007199254740992.0);
  rng = seed ? seed : (now_ns() ^ ((uint64_t)getpid() << 32)) | 1;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    perror("delayfwd: open /dev/net/tun");
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    perror("delayfwd: TUNSETIFF");
    return 1;
  }
  struct slot *ring = calloc(cap, sizeof *ring);
  if (!ring) {
    fprintf(stderr, "delayfwd: cannot allocate %lu slots\n", cap);
    return 1;
  }
  prctl(PR_SET_TIMERSLACK, slack_us ? slack_us * 1000UL : 1UL); /* 0 would mean the default */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sig; /* no SA_RESTART: ppoll returns EINTR */
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  printf("ready\n");
  fflush(stdout);

  uint64_t head = 0, count = 0; /* ring[head % cap] is the oldest */
  static unsigned char scratch[65536];
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  for (;;) {
    uint64_t now = now_ns();
    /* send what is due; the first one's lateness is the wake-up's (the
       rest of a burst also waits for the writes before it) */
    if (count > 0 && ring[head % cap].due <= now) {
      uint64_t late = now - ring[head % cap].due;
      st.wakes++, st.wake_late_sum += late;
      if (late > st.wake_late_max) st.wake_late_max = late;
    }
    while (count > 0) {
      struct slot *s = &ring[head % cap];
      if (s->due > now) break;
      ssize_t w = write(fd, s->data, s->len);
      if (w < 0) {
        st.werr++;
      } else {
        uint64_t late = now_ns() - s->due;
        st.tx++, st.txbytes += (uint64_t)w, st.late_sum += late;
        if (late > st.late_max) st.late_max = late;
      }
      head++;
      count--;
    }
    if (want_stats) {
      want_stats = 0;
      print_stats(count);
    }
    if (want_exit) {
      print_stats(count);
      return 0;
    }
    struct timespec ts, *tsp = NULL;
    if (count > 0) {
      uint64_t wait = ring[head % cap].due - now;
      ts.tv_sec = (time_t)(wait / 1000000000ull);
      ts.tv_nsec = (long)(wait % 1000000000ull);
      tsp = &ts;
    }
    int r = ppoll(&pfd, 1, tsp, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      perror("delayfwd: ppoll");
      return 1;
    }
    if (r == 0 || !(pfd.revents & POLLIN)) continue;
    /* read a bounded batch, then look at the due packets again */
    for (int n = 0; n < 256; n++) {
      unsigned char *buf = count < cap ? ring[(head + count) % cap].data : scratch;
      ssize_t len = read(fd, buf, count < cap ? SLOT : sizeof scratch);
      if (len < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        perror("delayfwd: read");
        return 1;
      }
      st.rx++;
      st.rxbytes += (uint64_t)len;
      if (loss_thresh && (next_rand() >> 11) < loss_thresh) {
        st.lost++;
        continue;
      }
      if (count >= cap) {
        st.qdrop++;
        continue;
      }
      if (len > SLOT) { /* truncated read: cannot happen with an MTU of 1500 */
        st.toolong++;
        continue;
      }
      struct slot *s = &ring[(head + count) % cap];
      s->due = now_ns() + delay;
      s->len = (uint32_t)len;
      count++;
      if (count > st.maxq) st.maxq = count;
    }
  }
}
