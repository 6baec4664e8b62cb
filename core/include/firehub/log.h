// Minimal structured logging to stderr: one line per event, UTC timestamp, level, component.
// Thread-safe. The level is set once at start (FIREHUB_LOG_LEVEL or --log-level).
#pragma once

#include <sstream>
#include <string>

namespace firehub::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void setLevel(Level level);
Level level();
bool parseLevel(const std::string& text, Level& out);
void write(Level level, const char* component, const std::string& message);
// Names the calling thread as `top -H`, `ps -L` and perf show it (at most 15 characters kept).
void nameThread(const char* name);

}  // namespace firehub::log

#define FIREHUB_LOG(LEVEL, COMPONENT, EXPR)                                             \
  do {                                                                                  \
    if (::firehub::log::Level::LEVEL >= ::firehub::log::level()) {                      \
      std::ostringstream fh_log_os_;                                                    \
      fh_log_os_ << EXPR;                                                               \
      ::firehub::log::write(::firehub::log::Level::LEVEL, COMPONENT, fh_log_os_.str()); \
    }                                                                                   \
  } while (0)
