// Store conformance for folded reads (MessageStore::read_folded): each
// message with its latest edit, reaction counts and reply count, as of the
// head, on every store. Built a second time into tests/redis with
// PARLEY_CONFORMANCE_REDIS, like the rest of the suite.
#include "unit/store_fixtures.hpp"

namespace {

AppendRequest reply(const std::string& user, uint64_t to, const std::string& text) {
  AppendRequest r = request("g", user, "", text);
  r.entry.reply_to = to;
  return r;
}

FoldedPage folded(MessageStore& log, uint64_t after, size_t limit, const std::string& reader,
                  const std::string& group = "g") {
  FoldedPage page;
  require_ok(log.read_folded(group, after, limit, reader, &page));
  REQUIRE(page.folds.size() == page.messages.size());
  return page;
}

std::vector<uint64_t> ids_of(const FoldedPage& page) {
  std::vector<uint64_t> ids;
  for (const Message& m : page.messages) ids.push_back(m.msg_id);
  return ids;
}

// 1 ann "hello", 2 bob answers 1, 3 ann edits 1, 4-5 bob and cy 👍 on 1,
// 6 ann 🎉 on 1, 7 bob edits 2, 8 ann edits 1 again, 9 dave joins, 10 cy
// answers 1.
void write_thread(MessageStore& log) {
  append_ok(log, {request("g", "ann", "", "hello"), reply("bob", 1, "hi"), change(EntryKind::kEdit, "ann", 1, "hello!"),
                  react("bob", 1, "👍"), react("cy", 1, "👍"), react("ann", 1, "🎉"),
                  change(EntryKind::kEdit, "bob", 2, "hi!"), change(EntryKind::kEdit, "ann", 1, "hello!!"),
                  change(EntryKind::kJoin, "dave", 0), reply("cy", 1, "me too")});
}

}  // namespace

#define FOLDED_STORES ALL_STORES

TEST_CASE_TEMPLATE("store: a folded read gives each message its latest edit, reaction counts and replies", T,
                   FOLDED_STORES) {
  T stores;
  MessageStore& log = stores.log();
  write_thread(log);
  const FoldedPage page = folded(log, 0, 100, "bob");
  CHECK(page.epoch == 1);
  CHECK(page.head == 10);
  CHECK(page.to == 10);
  // Edits and reactions fold into their messages; the join stays.
  REQUIRE(ids_of(page) == std::vector<uint64_t>{1, 2, 9, 10});
  const Message& hello = page.messages[0];
  CHECK(hello.contents == "hello!!");
  CHECK(hello.user_id == "ann");
  CHECK(page.folds[0].edited == 8);
  CHECK(page.folds[0].replies == 2);
  // Sorted by key (bytes): 🎉 (F0 9F 8E 89) before 👍 (F0 9F 91 8D); bob gave 👍.
  CHECK(page.folds[0].reactions ==
        std::vector<ReactionCount>{ReactionCount{"🎉", 1, false}, ReactionCount{"👍", 2, true}});
  CHECK(page.messages[1].contents == "hi!");
  CHECK(page.messages[1].entry.reply_to == 1);
  CHECK(page.folds[1] == Fold{7, {}, 0});
  CHECK(page.messages[2].entry.kind == EntryKind::kJoin);
  CHECK(page.messages[2].user_id == "dave");
  CHECK(page.folds[2] == Fold{});
  CHECK(page.messages[3].contents == "me too");
  CHECK(page.folds[3] == Fold{});
  // Another reader sees the same counts, its own marked.
  CHECK(folded(log, 0, 100, "ann").folds[0].reactions ==
        std::vector<ReactionCount>{ReactionCount{"🎉", 1, true}, ReactionCount{"👍", 2, false}});
}

TEST_CASE_TEMPLATE("store: a folded page covers the limit ids after its start and folds them as of the head", T,
                   FOLDED_STORES) {
  T stores;
  MessageStore& log = stores.log();
  write_thread(log);
  FoldedPage first = folded(log, 0, 3, "cy");
  CHECK(first.to == 3);
  CHECK(first.head == 10);
  REQUIRE(ids_of(first) == std::vector<uint64_t>{1, 2});
  CHECK(first.messages[0].contents == "hello!!");  // edit 8 lies beyond the page, not beyond the head
  CHECK(first.folds[0].replies == 2);
  const FoldedPage middle = folded(log, 3, 3, "cy");
  CHECK(middle.to == 6);
  CHECK(middle.messages.empty());
  const FoldedPage last = folded(log, 6, 30, "cy");
  CHECK(last.to == 10);
  CHECK(ids_of(last) == std::vector<uint64_t>{9, 10});
  const FoldedPage past = folded(log, 10, 5, "cy");
  CHECK(past.to == 10);
  CHECK(past.head == 10);
  CHECK(past.messages.empty());
  const FoldedPage none = folded(log, 0, 10, "cy", "nowhere");
  CHECK(none.epoch == 0);
  CHECK(none.head == 0);
  CHECK(none.messages.empty());
}

TEST_CASE_TEMPLATE("store: a folded read leaves a deleted message bare and stops counting a deleted reply", T,
                   FOLDED_STORES) {
  T stores;
  MessageStore& log = stores.log();
  write_thread(log);
  append_ok(log, {change(EntryKind::kDelete, "bob", 2), react("cy", 1, "👍", true)});
  FoldedPage page = folded(log, 0, 100, "cy");
  REQUIRE(ids_of(page) == std::vector<uint64_t>{1, 2, 9, 10});
  CHECK(page.folds[0].replies == 1);  // cy's answer; bob's was deleted
  CHECK(page.folds[0].reactions ==
        std::vector<ReactionCount>{ReactionCount{"🎉", 1, false}, ReactionCount{"👍", 1, false}});
  CHECK(page.messages[1].deleted);
  CHECK(page.messages[1].contents.empty());
  CHECK(page.folds[1] == Fold{});  // not even that it was edited
  append_ok(log, {change(EntryKind::kDelete, "ann", 1)});
  page = folded(log, 0, 100, "cy");
  CHECK(page.messages[0].deleted);
  CHECK(page.messages[0].contents.empty());
  CHECK(page.folds[0] == Fold{});
}

TEST_CASE_TEMPLATE("store: a reset group folds only its new epoch", T, FOLDED_STORES) {
  T stores;
  MessageStore& log = stores.log();
  write_thread(log);
  require_ok(log.reset_group("g").status());
  append_ok(log, {request("g", "ann", "", "fresh"), react("bob", 1, "👍")});
  const FoldedPage page = folded(log, 0, 100, "bob");
  CHECK(page.epoch == 2);
  CHECK(page.head == 2);
  REQUIRE(page.messages.size() == 1);
  CHECK(page.messages[0].contents == "fresh");
  CHECK(page.folds[0] == Fold{0, {ReactionCount{"👍", 1, true}}, 0});
}
