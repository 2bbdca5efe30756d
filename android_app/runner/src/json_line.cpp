#include "json_line.h"

#include <cmath>
#include <cstdio>

namespace mobilebench {
namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is not one
// (overlong forms, surrogates and code points above U+10FFFF are rejected).
size_t utf8_sequence_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  size_t length;
  uint32_t code_point;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    code_point = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    code_point = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    code_point = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    const unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (b & 0x3F);
  }
  if ((length == 3 && code_point < 0x800) || (length == 4 && code_point < 0x10000) ||
      (code_point >= 0xD800 && code_point <= 0xDFFF) || code_point > 0x10FFFF) {
    return 0;
  }
  return length;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
      ++i;
      continue;
    }
    const size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  out.push_back('"');
}

std::string json_int_array(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    out += std::to_string(values[i]);
  }
  out.push_back(']');
  return out;
}

JsonLine::JsonLine(std::string_view event) {
  text_ = "{";
  append_json_string(text_, "event");
  text_.push_back(':');
  append_json_string(text_, event);
}

void JsonLine::key(std::string_view name) {
  text_.push_back(',');
  append_json_string(text_, name);
  text_.push_back(':');
}

JsonLine& JsonLine::add(std::string_view name, std::string_view value) {
  key(name);
  append_json_string(text_, value);
  return *this;
}

JsonLine& JsonLine::add(std::string_view name, const char* value) {
  return add(name, std::string_view(value ? value : ""));
}

JsonLine& JsonLine::add(std::string_view name, const std::string& value) {
  return add(name, std::string_view(value));
}

JsonLine& JsonLine::add(std::string_view name, bool value) {
  key(name);
  text_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::add_integer(std::string_view name, const std::string& digits) {
  key(name);
  text_ += digits;
  return *this;
}

JsonLine& JsonLine::add(std::string_view name, double value) {
  key(name);
  if (!std::isfinite(value)) {
    text_ += "null";
    return *this;
  }
  char number[32];
  std::snprintf(number, sizeof(number), "%.10g", value);
  text_ += number;
  return *this;
}

JsonLine& JsonLine::add_ms(std::string_view name, double value_ms) {
  key(name);
  if (!std::isfinite(value_ms)) {
    text_ += "null";
    return *this;
  }
  char number[40];
  std::snprintf(number, sizeof(number), "%.6f", value_ms);
  text_ += number;
  return *this;
}

JsonLine& JsonLine::add_null(std::string_view name) {
  key(name);
  text_ += "null";
  return *this;
}

JsonLine& JsonLine::add(std::string_view name, const std::vector<int64_t>& values) {
  key(name);
  text_ += json_int_array(values);
  return *this;
}

JsonLine& JsonLine::add(std::string_view name, const std::vector<std::string>& values) {
  key(name);
  text_.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) text_.push_back(',');
    append_json_string(text_, values[i]);
  }
  text_.push_back(']');
  return *this;
}

JsonLine& JsonLine::add_raw(std::string_view name, std::string_view json) {
  key(name);
  text_.append(json);
  return *this;
}

std::string JsonLine::str() const {
  return text_ + "}";
}

void JsonLine::emit() const {
  const std::string line = str() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace mobilebench
