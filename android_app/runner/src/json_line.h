// One JSON object per line on stdout: the runner's only output protocol.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mobilebench {

// Appends `text` to `out` as a JSON string literal (with quotes). Control characters are
// escaped as \uXXXX; bytes that are not valid UTF-8 (a file name can hold any bytes)
// become U+FFFD, so the line always parses.
void append_json_string(std::string& out, std::string_view text);

// Builds one JSON object field by field, then writes it as a single line and flushes, so
// a reader streaming our stdout (over adb) sees each event as it happens.
class JsonLine {
 public:
  explicit JsonLine(std::string_view event);

  JsonLine& add(std::string_view key, std::string_view value);
  JsonLine& add(std::string_view key, const char* value);
  JsonLine& add(std::string_view key, const std::string& value);
  JsonLine& add(std::string_view key, bool value);
  template <typename Int,
            std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>, int> = 0>
  JsonLine& add(std::string_view key, Int value) {
    if constexpr (std::is_signed_v<Int>) {
      return add_integer(key, std::to_string(static_cast<long long>(value)));
    } else {
      return add_integer(key, std::to_string(static_cast<unsigned long long>(value)));
    }
  }
  // Non-finite numbers are written as null (JSON has no NaN/Infinity).
  JsonLine& add(std::string_view key, double value);
  // A duration in milliseconds, to the nanosecond (six decimals).
  JsonLine& add_ms(std::string_view key, double value_ms);
  JsonLine& add_null(std::string_view key);
  JsonLine& add(std::string_view key, const std::vector<int64_t>& values);
  JsonLine& add(std::string_view key, const std::vector<std::string>& values);
  // `json` must already be valid JSON (an object or array built by the caller).
  JsonLine& add_raw(std::string_view key, std::string_view json);

  std::string str() const;  // the finished object, without the newline
  void emit() const;        // write str() + "\n" to stdout and flush

 private:
  void key(std::string_view name);
  JsonLine& add_integer(std::string_view name, const std::string& digits);
  std::string text_;
};

// Shape as a JSON array, e.g. [1,3,224,224].
std::string json_int_array(const std::vector<int64_t>& values);

}  // namespace mobilebench
