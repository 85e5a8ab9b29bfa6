// Uses the installed headers and library; fails if they disagree.
#include <cstdio>

#include <parley/memory_store.hpp>
#include <parley/version.hpp>

int main() {
  auto store = parley::make_memory_message_store();
  std::vector<parley::AppendOutcome> out;
  parley::Status st = store->append({{"g", "u", "c", "hi", 0}}, &out);
  if (!st || out.size() != 1 || out[0].message.msg_id != 1) {
    std::printf("append: %s\n", st.to_string().c_str());
    return 1;
  }
  if (parley::version_number() != PARLEY_VERSION_NUMBER) {
    std::printf("header %d, library %d\n", PARLEY_VERSION_NUMBER, parley::version_number());
    return 1;
  }
  std::printf("installed parley %s works\n", parley::version_string());
  return 0;
}
