// Levelled logging to stderr for parley-server: one line per event, with a
// UTC timestamp, the level and the node id. Safe from any thread.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace parley::server {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug", "info", "warn", "error"; false if unknown.
bool parse_log_level(std::string_view name, LogLevel* out);
void set_log_level(LogLevel level);
void set_log_node(std::string node_id);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view text);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(level)) log_line(level, fmt::format(format, std::forward<Args>(args)...));
}
#define PARLEY_LOG_DEBUG(...) ::parley::server::log(::parley::server::LogLevel::kDebug, __VA_ARGS__)
#define PARLEY_LOG_INFO(...) ::parley::server::log(::parley::server::LogLevel::kInfo, __VA_ARGS__)
#define PARLEY_LOG_WARN(...) ::parley::server::log(::parley::server::LogLevel::kWarn, __VA_ARGS__)
#define PARLEY_LOG_ERROR(...) ::parley::server::log(::parley::server::LogLevel::kError, __VA_ARGS__)

}  // namespace parley::server
