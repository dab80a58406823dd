// gst-p2psp bench: what authenticated teams cost (docs/security.md).
//
//   build-*/bench/p2psp-crypto-cost [iterations]
//
// Prints the bytes a seal adds to a datagram, the CPU time (thread CPU
// clock) of one seal and
// one open of a CHUNK datagram with a 1448-byte payload (encrypted, and
// authenticated only), the Argon2id key derivation time, and the peak RSS.
#include <gst/p2psp/auth.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

using namespace p2psp;
// Thread CPU time, not wall time: on a shared machine the wall clock
// counts other processes' turns too.
struct Clock {
  using time_point = std::chrono::nanoseconds;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) +
           std::chrono::nanoseconds(ts.tv_nsec);
  }
};

namespace {

double ns_per_op(Clock::time_point start, size_t ops) {
  return static_cast<double>((Clock::now() - start).count()) /
         static_cast<double>(ops);
}

void measure(bool encrypt, size_t iterations, const Bytes& chunk) {
  auth::Key key{};
  auth::random_bytes(key.data(), key.size());
  auth::DatagramCrypto sender(key, 1, encrypt);
  auth::DatagramCrypto receiver(key, 2, encrypt);
  // Seals timed alone (the result dropped, as the core hands it to the
  // socket), then sealed copies kept, untimed, to time the opens.
  size_t total = 0;
  auto start = Clock::now();
  for (size_t i = 0; i < iterations; ++i) {
    total += sender.seal(chunk.data(), chunk.size()).size();
  }
  const double seal_ns = ns_per_op(start, iterations);
  std::vector<Bytes> sealed;
  sealed.reserve(iterations);
  for (size_t i = 0; i < iterations; ++i) {
    sealed.push_back(sender.seal(chunk.data(), chunk.size()));
  }
  Bytes out;
  size_t ok = 0;
  start = Clock::now();
  for (const Bytes& s : sealed) {
    ok += receiver.open(s.data(), s.size(), &out) ==
          auth::DatagramCrypto::Open::kOk;
  }
  const double open_ns = ns_per_op(start, iterations);
  if (ok != iterations || total != iterations * sealed[0].size()) {
    std::fprintf(stderr, "only %zu of %zu opened\n", ok, iterations);
    std::exit(1);
  }
  const double mbps = chunk.size() * 8 / seal_ns * 1000;  // Mb/s per core
  std::printf(
      "%-13s datagram %zu -> %zu bytes (+%zu); seal %.0f ns, open %.0f ns "
      "(one core seals %.0f Mb/s)\n",
      encrypt ? "encrypt:" : "auth-only:", chunk.size(), sealed[0].size(),
      sealed[0].size() - chunk.size(), seal_ns, open_ns, mbps);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t iterations =
      argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  std::vector<uint8_t> payload(1448);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i);
  const Bytes chunk =
      encode_chunk(1, 2, kImplicitOrigin, 4, 0, payload.data(), payload.size());

  auth::Salt salt{};
  auth::Keys keys;
  const auto start = Clock::now();
  if (!auth::derive_keys("correct horse battery", salt, &keys)) return 1;
  std::printf("argon2id:     key derivation %.1f ms (8 MiB, 3 passes)\n",
              ns_per_op(start, 1) / 1e6);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS:     %.1f MiB after the derivation\n",
              usage.ru_maxrss / 1024.0);
  for (bool encrypt : {true, false}) measure(encrypt, iterations, chunk);
  return 0;
}
