#include "proc_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace parley::load {

std::optional<uint64_t> process_cpu_us(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields are
  // counted from the last ')'. After it come state (3) ... utime (14), stime (15).
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14) utime = std::stoull(field);
    if (n == 15) stime = std::stoull(field);
  }
  if (!fields) return std::nullopt;
  const long ticks = sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return std::nullopt;
  return (utime + stime) * 1000000 / static_cast<uint64_t>(ticks);
}

std::optional<uint64_t> process_rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (in && std::getline(in, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &kb) == 1) return kb * 1024;
  }
  return std::nullopt;
}

uint64_t self_cpu_us() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto us = [](const timeval& tv) {
    return static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

std::optional<uint64_t> cpu_pressure_us() {
  std::ifstream in("/proc/pressure/cpu");
  std::string line;
  while (in && std::getline(in, line)) {
    unsigned long long total = 0;
    if (line.rfind("some ", 0) != 0) continue;
    const size_t at = line.find("total=");
    if (at != std::string::npos && std::sscanf(line.c_str() + at, "total=%llu", &total) == 1) return total;
  }
  return std::nullopt;
}

}  // namespace parley::load
