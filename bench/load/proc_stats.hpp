// Reads another process's CPU time and resident memory from /proc, for the
// load generator's "server CPU per delivered message" and "memory per
// connection". Linux only. Any thread may call; nothing is cached.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <optional>

namespace parley::load {

// utime + stime of process `pid` in microseconds (from /proc/PID/stat, so with
// the kernel's clock-tick resolution, usually 10 ms). nullopt if unreadable.
std::optional<uint64_t> process_cpu_us(pid_t pid);

// VmRSS of process `pid` in bytes (from /proc/PID/status). nullopt if unreadable.
std::optional<uint64_t> process_rss_bytes(pid_t pid);

// CPU time (user + system) this process has used, in microseconds.
uint64_t self_cpu_us();

// The machine's CPU pressure: total microseconds during which some runnable
// task waited for a CPU (the "some" line of /proc/pressure/cpu). A delta over
// a window divided by its length tells how contended the machine was. nullopt
// where the kernel has no PSI.
std::optional<uint64_t> cpu_pressure_us();

}  // namespace parley::load
