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

// An unbalanced '[' or ']' opens or closes a CMake bracket: ctest then
// fails to read every test of the program.
TEST_CASE("no test name has an unbalanced square bracket") {
  for (const doctest::detail::TestCase& tc : doctest::detail::getRegisteredTests()) {
    int depth = 0;
    bool balanced = true;
    for (const char* c = tc.m_name; *c != '\0'; ++c) {
      if (*c == '[') ++depth;
      if (*c == ']' && --depth < 0) balanced = false;
    }
    CHECK_MESSAGE((balanced && depth == 0), tc.m_name);
  }
}
