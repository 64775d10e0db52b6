#include "confgate/cache/coalescer.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace confgate::cache {
namespace {

CachedResponsePtr Answer(const std::string& body) {
  auto response = std::make_shared<CachedResponse>();
  response->status = 200;
  response->body = body;
  return response;
}

// What one coalesced read was told: to lead a fetch, or the answer it got.
struct Read {
  bool led = false;
  bool answered = false;
  std::string body;  // "<failed>" for a nullptr answer
};

Coalescer::Waiter Record(Read& read) {
  return [&read](bool lead, CachedResponsePtr response) {
    if (lead) {
      read.led = true;
      return;
    }
    read.answered = true;
    read.body = response != nullptr ? response->body : "<failed>";
  };
}

TEST(CoalescerTest, ReadArrivingDuringFetchNeverGetsThatFetchsAnswer) {
  Coalescer coalescer;
  Read first, second, third;
  ASSERT_TRUE(coalescer.JoinOrLead("k", Record(first)));
  // These arrive while the first fetch is in flight: it may carry a value older than a write
  // acknowledged just before they arrived.
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(second)));
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(third)));

  coalescer.Complete("k", Answer("old"));
  EXPECT_FALSE(second.answered);
  EXPECT_FALSE(third.answered);
  // One of them sends the next fetch, the other shares it.
  EXPECT_TRUE(second.led);
  EXPECT_FALSE(third.led);

  Read late;  // arrives while the second fetch is in flight: waits for a third
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(late)));
  coalescer.Complete("k", Answer("new"));
  EXPECT_TRUE(third.answered);
  EXPECT_EQ(third.body, "new");
  EXPECT_FALSE(late.answered);
  EXPECT_TRUE(late.led);

  coalescer.Complete("k", Answer("newest"));
  Read after;  // nothing in flight any more: leads at once
  EXPECT_TRUE(coalescer.JoinOrLead("k", Record(after)));
}

TEST(CoalescerTest, AFailedFetchFailsOnlyTheGroupItServed) {
  Coalescer coalescer;
  Read leader, queued, sharer, next;
  ASSERT_TRUE(coalescer.JoinOrLead("k", Record(leader)));
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(queued)));
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(sharer)));
  coalescer.Complete("k", Answer("a"));
  ASSERT_TRUE(queued.led);
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(next)));
  coalescer.Complete("k", nullptr);
  EXPECT_EQ(sharer.body, "<failed>");
  EXPECT_FALSE(next.answered);
  EXPECT_TRUE(next.led);  // tries again with its own fetch
}

TEST(CoalescerTest, AResigningLeaderHandsTheFetchToItsGroup) {
  Coalescer coalescer;
  Read leader, a, b, c;
  ASSERT_TRUE(coalescer.JoinOrLead("k", Record(leader)));
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(a)));
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(b)));
  coalescer.Complete("k", Answer("x"));
  ASSERT_TRUE(a.led);
  // `a` cannot fetch (its client left): `b`, of the same group, leads instead.
  coalescer.Resign("k");
  EXPECT_TRUE(b.led);
  EXPECT_FALSE(b.answered);
  // `b` resigns too with nobody left in its group: a read queued meanwhile leads.
  EXPECT_FALSE(coalescer.JoinOrLead("k", Record(c)));
  coalescer.Resign("k");
  EXPECT_TRUE(c.led);
  coalescer.Complete("k", Answer("y"));
  Read fresh;
  EXPECT_TRUE(coalescer.JoinOrLead("k", Record(fresh)));
}

TEST(CoalescerTest, KeysAreIndependent) {
  Coalescer coalescer;
  Read a, b;
  EXPECT_TRUE(coalescer.JoinOrLead("a", Record(a)));
  EXPECT_TRUE(coalescer.JoinOrLead("b", Record(b)));
  coalescer.Complete("a", Answer("1"));
  coalescer.Resign("b");  // nobody waits: the key is free again
  EXPECT_TRUE(coalescer.JoinOrLead("b", Record(b)));
}

}  // namespace
}  // namespace confgate::cache
