#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>

// ctest registers each case by name through a CMake list, which splits at
// ';': such a case would silently run as two filters matching nothing.
TEST_CASE("no test name contains a semicolon") {
  for (const doctest::detail::TestCase& tc : doctest::detail::getRegisteredTests()) {
    CHECK_MESSAGE(std::strchr(tc.m_name, ';') == nullptr, tc.m_name);
  }
}
