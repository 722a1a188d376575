// Checks shared by the simulator's tests.
#pragma once

#include <exception>
#include <functional>
#include <string>

namespace test_checks {

// Returns the message of the exception `f` throws, or "no error".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace test_checks
