#include "confgate/http/codec.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "confgate/common/recycling.h"
#include "gtest/gtest.h"
#include "http/request_target.h"

namespace confgate::http {
namespace {

// Everything a decoder reported, in a form two runs can be compared by.
struct Transcript {
  std::vector<std::string> events;
  bool error = false;
  int error_status = 0;
  bool operator==(const Transcript&) const = default;
};

std::string Describe(const HeaderMap& headers) {
  std::string out;
  for (const auto& entry : headers.entries()) {
    absl::StrAppend(&out, entry.name, "=", entry.value, ";");
  }
  return out;
}

class RequestRecorder : public RequestDecoderCallbacks {
 public:
  void OnRequestHead(RequestHead&& head) override {
    events.push_back("head " + head.method + " " + std::string(head.target()) + " v1." +
                     std::to_string(head.version_minor) + " ka=" + std::to_string(head.keep_alive) +
                     " framing=" + std::to_string(static_cast<int>(head.framing)) +
                     " cl=" + std::to_string(head.content_length) + " expect=" +
                     std::to_string(head.expect_continue) + " " + Describe(head.headers));
    heads.push_back(std::move(head));  // moved: its views stay where the decoder put them
  }
  void OnRequestBody(absl::string_view data) override {
    // Adjacent body pieces merge so that different splits compare equal.
    if (!events.empty() && events.back().rfind("body ", 0) == 0) {
      events.back().append(data.data(), data.size());
    } else {
      events.push_back("body " + std::string(data));
    }
  }
  void OnRequestComplete() override { events.push_back("complete"); }

  std::vector<RequestHead> heads;
  std::vector<std::string> events;
};

// Feeds `input` in the given pieces, resuming after each message like the proxy does.
Transcript DecodeRequests(absl::string_view input, const std::vector<size_t>& cuts,
                          const DecoderLimits& limits = {}) {
  RequestRecorder recorder;
  auto decoder = RequestDecoder::Create(recorder, limits);
  std::string pending;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    pending.append(input.data() + start, end - start);
    start = end;
    while (!pending.empty() && !decoder->has_error()) {
      if (decoder->paused()) {
        decoder->Resume();
      }
      size_t consumed = decoder->Feed(pending);
      pending.erase(0, consumed);
      if (consumed == 0 && !decoder->paused()) {
        break;
      }
    }
  }
  Transcript transcript;
  transcript.events = recorder.events;
  transcript.error = decoder->has_error();
  transcript.error_status = decoder->has_error() ? decoder->error().status : 0;
  return transcript;
}

// The transcript of `input` fed whole, after checking that byte-by-byte and 50 random splits
// give the very same transcript.
// A rejected input may deliver a different amount of body before the error depending on the
// split, so for those only the outcome must agree.
bool SameOutcome(const Transcript& a, const Transcript& b) {
  return a.error ? (b.error && a.error_status == b.error_status) : a == b;
}

Transcript DecodeAllSplits(absl::string_view input, const DecoderLimits& limits = {}) {
  Transcript whole = DecodeRequests(input, {}, limits);
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < input.size(); ++i) {
    every_byte.push_back(i);
  }
  EXPECT_TRUE(SameOutcome(DecodeRequests(input, every_byte, limits), whole)) << "byte by byte";
  std::mt19937 random(1234);
  for (int round = 0; round < 50 && input.size() > 1; ++round) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size(); ++i) {
      if (random() % 7 == 0) {
        cuts.push_back(i);
      }
    }
    EXPECT_TRUE(SameOutcome(DecodeRequests(input, cuts, limits), whole))
        << "random split round " << round;
  }
  return whole;
}

TEST(RequestDecoder, SimpleGet) {
  Transcript t =
      DecodeAllSplits("GET /v1/kv/app?index=3 HTTP/1.1\r\nHost: cfg\r\nX-A:  b  \r\n\r\n");
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.events.size(), 2u);
  EXPECT_EQ(t.events[0],
            "head GET /v1/kv/app?index=3 v1.1 ka=1 framing=0 cl=0 expect=0 Host=cfg;X-A=b;");
  EXPECT_EQ(t.events[1], "complete");
}

TEST(RequestDecoder, EmptyValuesKeepTheirFields) {
  Transcript t =
      DecodeAllSplits("GET / HTTP/1.1\r\nHost: cfg\r\nX-Empty:\r\nX-Spaces:   \r\nX-B: c\r\n\r\n");
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.events.size(), 2u);
  EXPECT_EQ(t.events[0],
            "head GET / v1.1 ka=1 framing=0 cl=0 expect=0 Host=cfg;X-Empty=;X-Spaces=;X-B=c;");
}

// The head scanner looks for line ends 16 bytes at a time: every line length, and a stray CR
// or LF at every place in the line, relative to those 16-byte steps.
TEST(RequestDecoder, LineEndsAreFoundAtEveryOffset) {
  for (size_t length = 1; length <= 48; ++length) {
    std::string value(length, 'v');
    Transcript t = DecodeRequests("GET / HTTP/1.1\r\nHost: h\r\nX-A: " + value + "\r\n\r\n", {});
    ASSERT_FALSE(t.error) << length;
    ASSERT_EQ(t.events.size(), 2u);
    EXPECT_NE(t.events[0].find("X-A=" + value + ";"), std::string::npos) << length;
    for (size_t at = 0; at < length; ++at) {
      for (char stray : {'\r', '\n'}) {
        std::string bad = value;
        bad[at] = stray;
        // The scanner must be what refuses it (llhttp would refuse some of these too).
        RequestRecorder recorder;
        auto decoder = RequestDecoder::Create(recorder, {});
        decoder->Feed("GET / HTTP/1.1\r\nHost: h\r\nX-A: " + bad + "\r\n\r\n");
        ASSERT_TRUE(decoder->has_error())
            << "length " << length << " at " << at << " byte " << static_cast<int>(stray);
        EXPECT_EQ(decoder->error().status, 400);
        EXPECT_EQ(decoder->error().reason, stray == '\r' ? "bare CR" : "bare LF")
            << "length " << length << " at " << at;
      }
    }
  }
}

// Field names with a byte that is not a token character in front, inside and at the end, for
// every such byte (':' ends a name, so it is left out; CR and LF, in, are refused by the head
// scanner first). Also after the names llhttp matches on its own way (Content-Length,
// Transfer-Encoding, Connection, Upgrade).
std::vector<std::string> NamesWithANonTokenByte() {
  const std::string tchar = "!#$%&'*+-.^_`|~";
  std::vector<std::string> names;
  for (int byte = 0; byte < 256; ++byte) {
    std::string c(1, static_cast<char>(byte));
    if (absl::ascii_isalnum(static_cast<unsigned char>(byte)) ||
        tchar.find(c) != std::string::npos || c == ":") {
      continue;
    }
    names.insert(names.end(), {c + "XY", "X" + c + "Y", "XY" + c, "Content-Length" + c,
                               "Transfer-Encoding" + c, "Connection" + c, "Upgrade" + c});
  }
  return names;
}

TEST(RequestDecoder, FieldNamesHoldTokenCharactersOnly) {
  for (const std::string& name : NamesWithANonTokenByte()) {
    Transcript t = DecodeRequests("GET / HTTP/1.1\r\nHost: h\r\n" + name + ": z\r\n\r\n", {});
    EXPECT_TRUE(t.error) << absl::CEscape(name);
    EXPECT_EQ(t.error_status, 400) << absl::CEscape(name);
  }
}

TEST(RequestDecoder, TargetsAreViewsOfTheHeadsOwnText) {
  const std::string long_path = "/v1/kv/" + std::string(60, 'k');
  const std::string wire =
      "GET " + long_path + "?index=12345678901234567 HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestRecorder whole;
  auto decoder = RequestDecoder::Create(whole, {});
  decoder->Feed(wire);
  ASSERT_EQ(whole.heads.size(), 1u);
  const RequestHead& head = whole.heads[0];
  EXPECT_EQ(head.path(), long_path);
  EXPECT_EQ(head.query(), "index=12345678901234567");
  // A whole head is copied once: the target and the fields are views of the same copy, as far
  // apart as in the bytes received.
  EXPECT_EQ(head.headers.entries()[0].name.data() - head.target().data(),
            static_cast<std::ptrdiff_t>(wire.find("Host") - wire.find('/')));

  // Fed byte by byte, the same head.
  RequestRecorder pieces;
  auto piecewise = RequestDecoder::Create(pieces, {});
  for (char c : wire) {
    piecewise->Feed(std::string(1, c));
  }
  ASSERT_EQ(pieces.heads.size(), 1u);
  EXPECT_EQ(pieces.heads[0].target(), head.target());
  EXPECT_EQ(pieces.heads[0].path(), long_path);

  // A copy has a target of its own (the sanitizer build sees a view left behind).
  auto original = std::make_unique<RequestHead>(head);
  RequestHead copy = *original;
  original.reset();
  EXPECT_EQ(copy.target(), long_path + "?index=12345678901234567");
  EXPECT_EQ(copy.query(), "index=12345678901234567");
  // A move takes the text along; the moved-from head has no target left to read.
  RequestHead moved = std::move(copy);
  EXPECT_EQ(moved.path(), long_path);
  EXPECT_EQ(copy.target(), "");
  copy = moved;  // into the moved-from head
  moved = std::move(copy);
  moved = copy;  // from a moved-from head: an empty target, nothing freed read
  EXPECT_EQ(moved.target(), "");
  RequestHead set;
  set.SetTarget("/a?b");
  EXPECT_EQ(set.path(), "/a");
  EXPECT_EQ(set.query(), "b");
  set.SetTarget("/c");
  EXPECT_EQ(set.path(), "/c");
  EXPECT_EQ(set.query(), "");
}

TEST(RequestDecoder, PathAndQuerySplit) {
  RequestRecorder recorder;
  auto decoder = RequestDecoder::Create(recorder, {});
  decoder->Feed("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(recorder.heads.size(), 1u);
  EXPECT_EQ(recorder.heads[0].path(), "/a/b");
  EXPECT_EQ(recorder.heads[0].query(), "x=1&y=2");
}

TEST(RequestDecoder, ReusedDecoderServesItsNewOwnerWithItsLimits) {
  RequestRecorder first;
  auto decoder = RequestDecoder::Create(first, {});
  const std::string request =
      "GET /a HTTP/1.1\r\nHost: h\r\nX-Pad: " + std::string(100, 'p') + "\r\n\r\n";
  EXPECT_EQ(decoder->Feed(request), request.size());
  ASSERT_TRUE(decoder->paused());
  decoder->Resume();

  RequestRecorder second;
  DecoderLimits small;
  small.max_header_bytes = 64;
  decoder->Reuse(second, small);
  decoder->Feed("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(second.heads.size(), 1u);
  EXPECT_EQ(second.heads[0].path(), "/b");
  EXPECT_EQ(first.heads.size(), 1u);  // nothing more for the previous owner

  decoder->Resume();
  decoder->Feed(request);  // fitted the old limits, not the new ones
  EXPECT_TRUE(decoder->has_error());
  EXPECT_EQ(decoder->error().status, 431);
  EXPECT_EQ(second.heads.size(), 1u);
}

TEST(RequestDecoder, KeepAliveRules) {
  EXPECT_NE(DecodeAllSplits("GET / HTTP/1.0\r\n\r\n").events[0].find("v1.0 ka=0"),
            std::string::npos);
  EXPECT_NE(DecodeAllSplits("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .events[0]
                .find("v1.0 ka=1"),
            std::string::npos);
  EXPECT_NE(DecodeAllSplits("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                .events[0]
                .find("ka=0"),
            std::string::npos);
}

TEST(RequestDecoder, ContentLengthBody) {
  Transcript t =
      DecodeAllSplits("PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.events.size(), 3u);
  EXPECT_NE(t.events[0].find("framing=1 cl=11"), std::string::npos);
  EXPECT_EQ(t.events[1], "body hello world");
}

TEST(RequestDecoder, ChunkedBodyWithExtensions) {
  Transcript t = DecodeAllSplits(
      "POST /k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.events.size(), 3u);
  EXPECT_NE(t.events[0].find("framing=2"), std::string::npos);
  EXPECT_EQ(t.events[1], "body hello world");
}

TEST(RequestDecoder, ExpectContinue) {
  Transcript t = DecodeAllSplits(
      "PUT /k HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_NE(t.events[0].find("expect=1"), std::string::npos);
}

TEST(RequestDecoder, PipelinedRequestsPauseBetweenMessages) {
  RequestRecorder recorder;
  auto decoder = RequestDecoder::Create(recorder, {});
  std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string second = "PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
  std::string both = first + second;
  size_t consumed = decoder->Feed(both);
  EXPECT_EQ(consumed, first.size());
  EXPECT_TRUE(decoder->paused());
  EXPECT_EQ(decoder->Feed(both.substr(consumed)), 0u);  // nothing while paused
  ASSERT_EQ(recorder.heads.size(), 1u);
  decoder->Resume();
  EXPECT_EQ(decoder->Feed(both.substr(consumed)), second.size());
  ASSERT_EQ(recorder.heads.size(), 2u);
  EXPECT_EQ(recorder.heads[1].target(), "/b");
  Transcript t = DecodeAllSplits(both);
  EXPECT_EQ(t.events.size(), 5u);
}

TEST(RequestDecoder, AbsoluteFormReducedToOriginForm) {
  Transcript t = DecodeAllSplits("GET http://cfg/v1/kv?x=1 HTTP/1.1\r\nHost: cfg\r\n\r\n");
  ASSERT_FALSE(t.error);
  EXPECT_NE(t.events[0].find("head GET /v1/kv?x=1 "), std::string::npos);
}

struct HostileCase {
  const char* name;
  const char* input;
  int status;
};

class HostileRequest : public ::testing::TestWithParam<HostileCase> {};

TEST_P(HostileRequest, IsRejectedWithTheRightStatus) {
  DecoderLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_uri_bytes = 256;
  limits.max_body_bytes = 16;
  Transcript t = DecodeAllSplits(GetParam().input, limits);
  EXPECT_TRUE(t.error);
  EXPECT_EQ(t.error_status, GetParam().status);
  for (const std::string& event : t.events) {
    EXPECT_NE(event, "complete") << "a rejected request must not complete";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, HostileRequest,
    ::testing::Values(
        HostileCase{"ClAndTe",
                    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n0\r\n\r\n",
                    400},
        HostileCase{"ConflictingCl",
                    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                    400},
        HostileCase{"ClList", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        HostileCase{"ClNegative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        HostileCase{"ClHex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400},
        HostileCase{"TeGzipChunked",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400},
        HostileCase{"TeIdentity",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        HostileCase{"TeTwice",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n",
                    400},
        HostileCase{"TeVerticalTab",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0b"
                    "chunked\r\n\r\n",
                    400},
        HostileCase{"BadChunkSize",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        HostileCase{"ChunkSizeOverflow",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "fffffffffffffffff\r\n",
                    400},
        HostileCase{"BareLf", "GET / HTTP/1.1\nHost: h\n\n", 400},
        HostileCase{"BareCr", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
        HostileCase{"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", 400},
        HostileCase{"NameWithAt", "GET / HTTP/1.1\r\nHost: h\r\nX@A: b\r\n\r\n", 400},
        HostileCase{"EmptyName", "GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n", 400},
        HostileCase{"ControlInValue", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400},
        HostileCase{"DelInValue", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n", 400},
        HostileCase{"ObsFold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
        HostileCase{"AbsoluteFormMismatch", "GET http://evil/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"Http09", "GET /\r\n\r\n", 400},
        HostileCase{"Http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 400},
        HostileCase{"MissingHost", "GET / HTTP/1.1\r\n\r\n", 400},
        HostileCase{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        HostileCase{"Connect", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400},
        HostileCase{"AsteriskTarget", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"UriTooLong",
                    "GET "
                    "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n",
                    414},
        HostileCase{"BodyTooLargeByLength",
                    "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n", 413},
        HostileCase{"BodyTooLargeChunked",
                    "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
                    413}),
    [](const ::testing::TestParamInfo<HostileCase>& info) { return info.param.name; });

// Paths that a prefix route would accept but an upstream resolving dot-segments would serve as
// another path (/v1/kv/../acl is /v1/acl): refused before any route is matched.
INSTANTIATE_TEST_SUITE_P(
    DotSegments, HostileRequest,
    ::testing::Values(
        HostileCase{"DotDot", "GET /v1/kv/../acl HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"DotDotAtEnd", "GET /v1/kv/.. HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"Dot", "GET /v1/kv/./x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"DotAtEnd", "GET /v1/kv/. HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"EncodedDotDot", "GET /v1/kv/%2e%2E/acl HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"HalfEncoded", "GET /v1/kv/.%2e/acl HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"DotDotWithParams", "GET /v1/kv/..;x=1/acl HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"EncodedSlash", "GET /v1/kv/..%2facl HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"Backslash", "GET /v1/kv/..\\acl HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"EncodedBackslash", "GET /v1/kv/%2e%2e%5cacl HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"AbsoluteForm", "GET http://h/v1/kv/../acl HTTP/1.1\r\nHost: h\r\n\r\n", 400}),
    [](const ::testing::TestParamInfo<HostileCase>& info) { return info.param.name; });

// Issue 17, round two: trailers parsed as strictly as heads, HTTP/1.0 with
// Transfer-Encoding, control bytes and fragments in targets.
constexpr char kChunkedPost[] =
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n";
INSTANTIATE_TEST_SUITE_P(
    RoundTwo, HostileRequest,
    ::testing::Values(
        HostileCase{"TrailerObsFold",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\nX-T: a\r\n b\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
                    400},
        HostileCase{"TrailerLeadingSpace",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\n X-T: a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
                    400},
        HostileCase{"TrailerBareLf",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\nX-T: a\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
                    400},
        HostileCase{"TrailerBareLfEnd",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\nX-T: a\r\n\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
                    400},
        HostileCase{"TrailerBareCr",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\nX-T: a\rX: b\r\n\r\n",
                    400},
        HostileCase{"TrailerControlByte",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\nX-T: a\x01z\r\n\r\n",
                    400},
        HostileCase{"TrailerSpaceBeforeColon",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\nX-T : a\r\n\r\n",
                    400},
        HostileCase{"TrailerNoColon",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "0\r\nGET /smuggled HTTP/1.1\r\n\r\n",
                    400},
        HostileCase{"Http10WithTransferEncoding",
                    "POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
                    400},
        HostileCase{"TabInTarget", "GET /v1/kv/a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"FormFeedInTarget",
                    "GET /v1/kv/a\x0c"
                    "b HTTP/1.1\r\nHost: h\r\n\r\n",
                    400},
        HostileCase{"FormFeedInQuery", "GET /v1/kv/a?x=\x0c HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"DelInTarget", "GET /v1/kv/a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"FragmentInTarget", "GET /v1/kv/a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"DotDotFragment", "GET /v1/kv/app/..#x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        HostileCase{"EncodedDotDotFragment", "GET /v1/kv/%2e%2e#x HTTP/1.1\r\nHost: h\r\n\r\n",
                    400},
        HostileCase{"FragmentInAbsoluteForm", "GET http://h/v1/kv/..#x HTTP/1.1\r\nHost: h\r\n\r\n",
                    400}),
    [](const ::testing::TestParamInfo<HostileCase>& info) { return info.param.name; });

// A connection that sent half a blank line (its CR) between requests is in a message: its
// decoder is not idle, and a decoder handed to another connection starts clean.
TEST(RequestDecoder, HalfABlankLineIsNotIdleAndReuseStartsClean) {
  RequestRecorder recorder;
  auto decoder = RequestDecoder::Create(recorder, {});
  EXPECT_EQ(decoder->Feed("\r"), 1u);
  EXPECT_TRUE(decoder->in_message());
  EXPECT_EQ(decoder->Feed("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 28u);
  EXPECT_FALSE(decoder->has_error());
  ASSERT_EQ(recorder.heads.size(), 1u);
  decoder->Resume();
  EXPECT_FALSE(decoder->in_message());
  // Reuse() after a stray CR: the next owner's request is its own.
  EXPECT_EQ(decoder->Feed("\r"), 1u);
  RequestRecorder next;
  decoder->Reuse(next, {});
  decoder->Feed("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_FALSE(decoder->has_error()) << decoder->error().reason;
  ASSERT_EQ(next.heads.size(), 1u);
  EXPECT_EQ(next.heads[0].target(), "/b");
}

TEST(RequestDecoder, TrailersAreAcceptedCheckedAndDropped) {
  Transcript t = DecodeAllSplits(std::string(kChunkedPost) +
                                 "X-Checksum: abc\r\nX-Other: 1\r\n\r\n"
                                 "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.events.size(), 5u);
  EXPECT_EQ(t.events[1], "body hello");
  EXPECT_EQ(t.events[2], "complete");
  EXPECT_EQ(t.events[3].rfind("head GET /next", 0), 0u) << t.events[3];
  EXPECT_EQ(t.events[3].find("X-Checksum"), std::string::npos) << "trailers are not a head";
}

// A trailer section counts against the header limit like a head: a flood is a 431, however
// it is cut into pieces, and the decoder keeps nothing of it.
TEST(RequestDecoder, TrailerFloodGets431) {
  DecoderLimits limits;
  limits.max_header_bytes = 1024;
  std::string flood = kChunkedPost;
  for (int i = 0; i < 64; ++i) {
    flood += "X-T" + std::to_string(i) + ": " + std::string(40, 'a') + "\r\n";
  }
  flood += "\r\n";
  Transcript t = DecodeAllSplits(flood, limits);
  EXPECT_TRUE(t.error);
  EXPECT_EQ(t.error_status, 431);
  // Trailers that fit pass.
  std::string fits = std::string(kChunkedPost) + "X-T: " + std::string(900, 'a') + "\r\n\r\n";
  EXPECT_FALSE(DecodeAllSplits(fits, limits).error);
}

// RFC 9112 section 7.1.1 allows any number of chunk extensions; they are dropped.
TEST(RequestDecoder, ChunkWithSeveralExtensionsIsAccepted) {
  Transcript t = DecodeAllSplits(
      "POST /k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;a=b;c=d\r\nhello\r\n6;x;y=\"q\";z=1\r\n world\r\n0;last=1;end\r\n\r\n");
  ASSERT_FALSE(t.error) << t.error_status;
  ASSERT_EQ(t.events.size(), 3u);
  EXPECT_EQ(t.events[1], "body hello world");
}

// Every byte value, at offsets that fall in the 16-byte steps and in the tail: control bytes,
// SP, DEL and '#' are refused wherever they are; the rest (obs-text included) pass.
TEST(RequestDecoder, TargetBytesAreCheckedAtEveryOffset) {
  for (int byte = 0; byte < 256; ++byte) {
    bool forbidden = byte <= 0x20 || byte == 0x7f || byte == '#';
    for (size_t offset : {1u, 7u, 15u, 16u, 31u, 40u}) {
      std::string target = "/" + std::string(40, 'a');
      target[offset] = static_cast<char>(byte);
      EXPECT_EQ(HasForbiddenTargetByte(target), forbidden) << byte << " at " << offset;
    }
  }
}

TEST(RequestDecoder, DotsThatAreNotSegmentsPass) {
  for (const char* path : {"/v1/kv/app.yaml", "/v1/kv/a..b", "/v1/kv/...", "/v1/kv/.hidden/x",
                           "/v1/kv/..hidden", "/.well-known/x", "/v1/kv/%2e%2e%2e", "/v1/kv//x",
                           "/v1/kv/x?path=../../etc", "/v1/kv/%2"}) {
    std::string input = std::string("GET ") + path + " HTTP/1.1\r\nHost: h\r\n\r\n";
    EXPECT_FALSE(DecodeAllSplits(input).error) << path;
  }
}

TEST(RequestDecoder, NulInHeaderValueIsRejected) {
  std::string input("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", 34);
  Transcript t = DecodeAllSplits(input);
  EXPECT_TRUE(t.error);
  EXPECT_EQ(t.error_status, 400);
}

TEST(RequestDecoder, HeadLargerThanTheLimitGets431) {
  DecoderLimits limits;
  limits.max_header_bytes = 1024;
  std::string input = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(1000, 'a') + "\r\n\r\n";
  Transcript t = DecodeAllSplits(input, limits);
  EXPECT_TRUE(t.error);
  EXPECT_EQ(t.error_status, 431);
  // Just under the limit passes.
  std::string fits = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(900, 'a') + "\r\n\r\n";
  EXPECT_FALSE(DecodeAllSplits(fits, limits).error);
}

// --- responses ---

class ResponseRecorder : public ResponseDecoderCallbacks {
 public:
  void OnResponseHead(ResponseHead&& head) override {
    events.push_back("head " + std::to_string(head.status) +
                     " ka=" + std::to_string(head.keep_alive) + " framing=" +
                     std::to_string(static_cast<int>(head.framing)) + " " + Describe(head.headers));
  }
  void OnResponseBody(absl::string_view data) override {
    if (!events.empty() && events.back().rfind("body ", 0) == 0) {
      events.back().append(data.data(), data.size());
    } else {
      events.push_back("body " + std::string(data));
    }
  }
  void OnResponseComplete() override { events.push_back("complete"); }
  std::vector<std::string> events;
};

struct ResponseResult {
  Transcript transcript;
  size_t consumed = 0;
};

ResponseResult DecodeResponse(absl::string_view input, const std::vector<size_t>& cuts,
                              const char* method, bool eof) {
  ResponseRecorder recorder;
  auto decoder = ResponseDecoder::Create(recorder, {});
  decoder->ExpectResponse(method);
  ResponseResult result;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  std::string pending;
  for (size_t end : ends) {
    pending.append(input.data() + start, end - start);
    start = end;
    size_t consumed = decoder->Feed(pending);
    result.consumed += consumed;
    pending.erase(0, consumed);
  }
  if (eof) {
    decoder->FeedEof();
  }
  result.transcript.events = recorder.events;
  result.transcript.error = decoder->has_error();
  result.transcript.error_status = decoder->has_error() ? decoder->error().status : 0;
  return result;
}

ResponseResult DecodeResponseAllSplits(absl::string_view input, const char* method = "GET",
                                       bool eof = false) {
  ResponseResult whole = DecodeResponse(input, {}, method, eof);
  std::mt19937 random(99);
  for (int round = 0; round < 50 && input.size() > 1; ++round) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size(); ++i) {
      if (random() % 5 == 0) {
        cuts.push_back(i);
      }
    }
    ResponseResult split = DecodeResponse(input, cuts, method, eof);
    EXPECT_TRUE(SameOutcome(split.transcript, whole.transcript)) << "round " << round;
    if (!whole.transcript.error) {
      EXPECT_EQ(split.consumed, whole.consumed) << "round " << round;
    }
  }
  return whole;
}

TEST(ResponseDecoder, ReusedDecoderStartsItsNextResponseForItsNewOwner) {
  ResponseRecorder first;
  auto decoder = ResponseDecoder::Create(first, {});
  decoder->ExpectResponse("GET");
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  EXPECT_EQ(decoder->Feed(chunked), chunked.size());
  ASSERT_TRUE(decoder->paused());

  ResponseRecorder second;
  decoder->Reuse(second, {});
  decoder->ExpectResponse("HEAD");  // a HEAD answer's Content-Length announces no body here
  decoder->Feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  decoder->ExpectResponse("GET");
  decoder->Feed("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
  ASSERT_EQ(second.events.size(), 5u);
  EXPECT_EQ(second.events[1], "complete");
  EXPECT_EQ(second.events[3], "body no");
  EXPECT_EQ(second.events[4], "complete");
  EXPECT_EQ(first.events.size(), 3u);  // head, body, complete of the first response only

  DecoderLimits small;
  small.max_header_bytes = 32;
  decoder->Reuse(second, small);
  decoder->ExpectResponse("GET");
  decoder->Feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: 0123456789\r\n\r\nok");
  EXPECT_TRUE(decoder->has_error());
  EXPECT_EQ(decoder->error().status, 502);
}

TEST(ResponseDecoder, ContentLength) {
  auto r =
      DecodeResponseAllSplits("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"3\"\r\n\r\nhello");
  ASSERT_FALSE(r.transcript.error);
  ASSERT_EQ(r.transcript.events.size(), 3u);
  EXPECT_EQ(r.transcript.events[0], "head 200 ka=1 framing=1 Content-Length=5;ETag=\"3\";");
  EXPECT_EQ(r.transcript.events[1], "body hello");
}

TEST(ResponseDecoder, Chunked) {
  auto r = DecodeResponseAllSplits(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
  ASSERT_FALSE(r.transcript.error);
  EXPECT_EQ(r.transcript.events[1], "body abcde");
  EXPECT_EQ(r.transcript.events.back(), "complete");
}

TEST(ResponseDecoder, CloseDelimitedCompletesAtEof) {
  auto r = DecodeResponseAllSplits("HTTP/1.1 200 OK\r\n\r\nuntil close", "GET", true);
  ASSERT_FALSE(r.transcript.error);
  EXPECT_EQ(r.transcript.events[0], "head 200 ka=0 framing=3 ");
  EXPECT_EQ(r.transcript.events[1], "body until close");
  EXPECT_EQ(r.transcript.events.back(), "complete");
}

TEST(ResponseDecoder, HeadResponseHasNoBody) {
  std::string input = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  auto r = DecodeResponseAllSplits(input, "HEAD");
  ASSERT_FALSE(r.transcript.error);
  EXPECT_EQ(r.transcript.events.size(), 2u);
  EXPECT_EQ(r.consumed, input.size());
}

TEST(ResponseDecoder, NoBodyFor204And304) {
  for (const char* input : {"HTTP/1.1 204 No Content\r\n\r\n",
                            "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"}) {
    auto r = DecodeResponseAllSplits(input);
    ASSERT_FALSE(r.transcript.error) << input;
    ASSERT_EQ(r.transcript.events.size(), 2u) << input;
    EXPECT_NE(r.transcript.events[0].find("framing=0"), std::string::npos);
  }
}

TEST(ResponseDecoder, InterimContinueIsSkipped) {
  auto r = DecodeResponseAllSplits(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_FALSE(r.transcript.error);
  ASSERT_EQ(r.transcript.events.size(), 3u);
  EXPECT_EQ(r.transcript.events[0].rfind("head 201", 0), 0u);
}

TEST(ResponseDecoder, TruncatedBodyIsAnError) {
  auto r = DecodeResponseAllSplits("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET", true);
  EXPECT_TRUE(r.transcript.error);
  EXPECT_EQ(r.transcript.error_status, 502);
  auto chunked = DecodeResponseAllSplits(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "GET", true);
  EXPECT_TRUE(chunked.transcript.error);
}

TEST(ResponseDecoder, MalformedResponsesAre502) {
  for (const char* input :
       {"garbage\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"}) {
    auto r = DecodeResponseAllSplits(input);
    EXPECT_TRUE(r.transcript.error) << input;
    EXPECT_EQ(r.transcript.error_status, 502) << input;
  }
}

// An interim response has no body: one that claims one is a broken upstream (502), never a
// second answer to the client.
TEST(ResponseDecoder, InterimResponseWithFramingIs502) {
  for (const char* input :
       {"HTTP/1.1 100 Continue\r\nContent-Length: 8\r\n\r\ninjectedHTTP/1.1 200 OK\r\n"
        "Content-Length: 4\r\n\r\nreal",
        "HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal",
        "HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n"
        "Content-Length: 4\r\n\r\nreal"}) {
    auto r = DecodeResponseAllSplits(input);
    EXPECT_TRUE(r.transcript.error) << input;
    EXPECT_EQ(r.transcript.error_status, 502) << input;
    for (const std::string& event : r.transcript.events) {
      EXPECT_EQ(event.find("injected"), std::string::npos) << input;
    }
  }
  // Several interim responses without framing, then the final one.
  auto ok = DecodeResponseAllSplits(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal");
  ASSERT_FALSE(ok.transcript.error);
  ASSERT_EQ(ok.transcript.events.size(), 3u);
  EXPECT_EQ(ok.transcript.events[0].rfind("head 200", 0), 0u);
  EXPECT_EQ(ok.transcript.events[1], "body real");
}

TEST(ResponseDecoder, StatusOutside100To599Is502) {
  for (const char* input :
       {"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 99 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 000 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 2000 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 0200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 00200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}) {
    auto r = DecodeResponseAllSplits(input);
    EXPECT_TRUE(r.transcript.error) << input;
    EXPECT_EQ(r.transcript.error_status, 502) << input;
  }
  for (const char* input :
       {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}) {
    EXPECT_FALSE(DecodeResponseAllSplits(input).transcript.error) << input;
  }
}

TEST(ResponseDecoder, TrailersAreCheckedAndBounded) {
  auto ok = DecodeResponseAllSplits(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n");
  ASSERT_FALSE(ok.transcript.error);
  ASSERT_EQ(ok.transcript.events.size(), 3u);
  EXPECT_EQ(ok.transcript.events[2], "complete");
  for (std::string trailer : {std::string("X-T: a\r\n b\r\n"), std::string("X-T: a\n"),
                              std::string("X-T: ") + std::string(40000, 'a') + "\r\n"}) {
    auto r = DecodeResponseAllSplits(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + trailer + "\r\n");
    EXPECT_TRUE(r.transcript.error) << trailer.substr(0, 20);
    EXPECT_EQ(r.transcript.error_status, 502);
  }
}

// Connection on an interim response says nothing of the connection after the final one: the
// final response is still read (llhttp took "close" as the end and dropped it). An interim
// response in HTTP/1.0, which has none, is broken.
TEST(ResponseDecoder, InterimResponseWithConnectionCloseKeepsTheFinalResponse) {
  auto r = DecodeResponseAllSplits(
      "HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\n"
      "Content-Length: 4\r\n\r\nreal");
  ASSERT_FALSE(r.transcript.error);
  ASSERT_EQ(r.transcript.events.size(), 3u);
  EXPECT_EQ(r.transcript.events[0].rfind("head 200", 0), 0u);
  EXPECT_EQ(r.transcript.events[1], "body real");
  auto old = DecodeResponseAllSplits(
      "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal");
  EXPECT_TRUE(old.transcript.error);
  EXPECT_EQ(old.transcript.error_status, 502);
}

// As for requests: no byte but a token character gets into a response's field name.
TEST(ResponseDecoder, FieldNamesHoldTokenCharactersOnly) {
  for (const std::string& name : NamesWithANonTokenByte()) {
    ResponseResult r = DecodeResponse(
        "HTTP/1.1 200 OK\r\n" + name + ": z\r\nContent-Length: 0\r\n\r\n", {}, "GET", false);
    EXPECT_TRUE(r.transcript.error) << absl::CEscape(name);
    EXPECT_EQ(r.transcript.error_status, 502) << absl::CEscape(name);
  }
}

// The reason phrase and header values are passed on to the client: no control byte in either
// may get through (CR and LF would split the response, NUL truncates it for C clients).
TEST(ResponseDecoder, ControlBytesInReasonOrValuesAre502) {
  const std::string inputs[] = {
      std::string("HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n", 39),
      "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 O\x7fK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\rSet-Cookie: x=1\r\nContent-Length: 0\r\n\r\n",
      std::string("HTTP/1.1 200 OK\r\nX-A: a\0z\r\nContent-Length: 0\r\n\r\n", 48),
      "HTTP/1.1 200 OK\r\nX-A: a\x01z\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 302 Found\r\nLocation: /a\rSet-Cookie: x=1\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 302 Found\r\nLocation: /a\nSet-Cookie: x=1\r\nContent-Length: 0\r\n\r\n",
  };
  for (const std::string& input : inputs) {
    auto r = DecodeResponseAllSplits(input);
    EXPECT_TRUE(r.transcript.error) << input;
    EXPECT_EQ(r.transcript.error_status, 502) << input;
    EXPECT_TRUE(r.transcript.events.empty()) << input;  // no head was handed on
  }
  // Tabs and obs-text are allowed in both.
  auto ok = DecodeResponseAllSplits(
      "HTTP/1.1 200 Fine\tand \xe2\x9c\x93\r\nX-A: a\tb \xc3\xa9\r\nContent-Length: 0\r\n\r\n");
  EXPECT_FALSE(ok.transcript.error);
}

TEST(ResponseDecoder, BytesAfterTheResponseAreNotConsumed) {
  std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  auto r = DecodeResponse(first + "HTTP/1.1 200 OK\r\n", {}, "GET", false);
  ASSERT_FALSE(r.transcript.error);
  EXPECT_EQ(r.consumed, first.size());
  EXPECT_EQ(r.transcript.events.back(), "complete");
}

TEST(Serializer, RequestRoundTrip) {
  RequestHead head;
  head.method = "PUT";
  head.SetTarget("/v1/kv/x?flags=1");
  head.headers.Add("Host", "cfg");
  head.headers.Add("Content-Length", "3");
  std::string wire;
  SerializeRequestHead(head, wire);
  EXPECT_EQ(wire, "PUT /v1/kv/x?flags=1 HTTP/1.1\r\nHost: cfg\r\nContent-Length: 3\r\n\r\n");
  Transcript t = DecodeAllSplits(wire + "abc");
  ASSERT_FALSE(t.error);
  EXPECT_EQ(t.events[1], "body abc");
}

TEST(Serializer, ResponseAndChunks) {
  ResponseHead head;
  head.status = 502;
  head.headers.Add("Transfer-Encoding", "chunked");
  std::string wire;
  SerializeResponseHead(head, wire);
  AppendChunk("hello", wire);
  AppendChunk("", wire);
  AppendChunk(std::string(26, 'z'), wire);
  wire.append(kLastChunk.data(), kLastChunk.size());
  EXPECT_EQ(wire.substr(0, 26), "HTTP/1.1 502 Bad Gateway\r\n");
  auto r = DecodeResponseAllSplits(wire);
  ASSERT_FALSE(r.transcript.error);
  EXPECT_EQ(r.transcript.events[1], "body hello" + std::string(26, 'z'));
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(799), "Unknown");
}

// Writers into memory of their own (the proxy's output buffers) size it first: the size must
// be exactly what is written, whatever the status, reason and fields.
TEST(Serializer, SizeIsExactlyWhatIsWritten) {
  for (int status : {200, 99, 1000, 0, -5}) {
    for (const char* reason : {"", "Fine"}) {
      ResponseHead head;
      head.status = status;
      head.reason = reason;
      head.headers.Add("Content-Length", "0");
      head.headers.Add("X-Empty", "");
      std::string wire(SerializedSize(head) + 8, '#');
      char* end = SerializeInto(head, wire.data());
      EXPECT_EQ(static_cast<size_t>(end - wire.data()), SerializedSize(head)) << status;
      EXPECT_EQ(wire.substr(SerializedSize(head)), "########") << status;
      EXPECT_EQ(wire.substr(0, 9 + std::to_string(status).size()),
                "HTTP/1.1 " + std::to_string(status));
    }
  }
  RequestHead request;
  request.method = "PUT";
  request.SetTarget("/v1/kv/a?cas=3");
  request.headers.Add("Host", "cfg");
  std::string wire(SerializedSize(request), '#');
  EXPECT_EQ(SerializeInto(request, wire.data()), wire.data() + wire.size());
  EXPECT_EQ(wire, "PUT /v1/kv/a?cas=3 HTTP/1.1\r\nHost: cfg\r\n\r\n");
}

TEST(HeaderMap, FieldSyntax) {
  EXPECT_TRUE(IsValidFieldName("X-Request-Id"));
  EXPECT_TRUE(IsValidFieldName("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(IsValidFieldName(""));
  EXPECT_FALSE(IsValidFieldName("X A"));
  EXPECT_FALSE(IsValidFieldName("X:A"));
  EXPECT_FALSE(IsValidFieldName("X\r\nA"));
  EXPECT_TRUE(IsValidFieldValue(""));
  EXPECT_TRUE(IsValidFieldValue("a b\tc \x80\xff"));
  EXPECT_FALSE(IsValidFieldValue("a\rb"));
  EXPECT_FALSE(IsValidFieldValue("a\nb"));
  EXPECT_FALSE(IsValidFieldValue(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidFieldValue("a\x7f"));
}

TEST(HeaderMap, CaseInsensitiveOperations) {
  HeaderMap headers;
  headers.Add("Connection", "keep-alive, Upgrade");
  headers.Add("X-A", "1");
  headers.Add("x-a", "2");
  EXPECT_EQ(*headers.Get("x-A"), "1");
  EXPECT_TRUE(headers.HasToken("connection", "upgrade"));
  EXPECT_FALSE(headers.HasToken("connection", "close"));
  EXPECT_EQ(headers.Remove("X-A"), 2u);
  headers.Set("Via", "1.1 a");
  headers.Set("via", "1.1 b");
  EXPECT_EQ(headers.size(), 2u);
  EXPECT_EQ(*headers.Get("VIA"), "1.1 b");
}

TEST(HeaderMap, FieldNamesAreRecognizedInAnyCase) {
  const std::vector<std::pair<std::string, FieldId>> known = {
      {"Host", FieldId::kHost},
      {"content-LENGTH", FieldId::kContentLength},
      {"Transfer-Encoding", FieldId::kTransferEncoding},
      {"CONNECTION", FieldId::kConnection},
      {"Keep-Alive", FieldId::kKeepAlive},
      {"Proxy-Connection", FieldId::kProxyConnection},
      {"TE", FieldId::kTe},
      {"Trailer", FieldId::kTrailer},
      {"Upgrade", FieldId::kUpgrade},
      {"Proxy", FieldId::kProxy},
      {"Proxy-Authenticate", FieldId::kProxyAuthenticate},
      {"Proxy-Authorization", FieldId::kProxyAuthorization},
      {"Expect", FieldId::kExpect},
      {"VIA", FieldId::kVia},
      {"X-Forwarded-For", FieldId::kXForwardedFor},
      {"x-forwarded-proto", FieldId::kXForwardedProto},
      {"X-Real-IP", FieldId::kXRealIp},
      {"X-Request-ID", FieldId::kXRequestId},
      {"Age", FieldId::kAge},
  };
  for (const auto& [name, id] : known) {
    EXPECT_EQ(ClassifyFieldName(name), id) << name;
  }
  // Same lengths, other names; names that only start like a known one; long and odd tokens.
  for (absl::string_view other : {"tf", "vib", "hosT-", "Content-Lengths", "x-request-ie",
                                  "Proxy-Authorizatio", "Content-Type", "!#$%&'*+-.^_`|~09azAZ"}) {
    EXPECT_EQ(ClassifyFieldName(other), FieldId::kOther) << other;
  }
  const std::vector<absl::string_view> invalid_names = {
      "",        "Ho st",
      "Host:",   absl::string_view("Con\0tent", 8),
      "X-A\r\n", "a-name-longer-than-any-known-one-with a space"};
  for (absl::string_view invalid : invalid_names) {
    EXPECT_EQ(ClassifyFieldName(invalid), FieldId::kInvalid) << invalid;
  }
  // Hop-by-hop as RFC 9110 and design.md say.
  EXPECT_TRUE(IsHopByHop(FieldId::kConnection));
  EXPECT_TRUE(IsHopByHop(FieldId::kProxyAuthorization));
  EXPECT_TRUE(IsHopByHop(FieldId::kContentLength));
  EXPECT_FALSE(IsHopByHop(FieldId::kHost));
  EXPECT_FALSE(IsHopByHop(FieldId::kOther));
  EXPECT_FALSE(IsHopByHop(FieldId::kXForwardedFor));
}

TEST(HeaderMap, SetByIdKeepsOneFieldAndAddedFieldsAreNamed) {
  HeaderMap headers;
  headers.Add("content-length", "5");
  headers.Add("X-A", "1");
  headers.Add("Content-Length", "7");
  headers.Set(FieldId::kContentLength, "Content-Length", "9");
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.entries()[0].name, "Content-Length");
  EXPECT_EQ(headers.entries()[0].value, "9");
  EXPECT_EQ(headers.entries()[1].name, "X-A");
  EXPECT_EQ(*headers.Get(FieldId::kContentLength), "9");
  headers.Set(FieldId::kVia, "Via", "1.1 x");
  EXPECT_EQ(headers.entries().back().id, FieldId::kVia);
  EXPECT_EQ(headers.Get(FieldId::kHost), nullptr);
}

TEST(HeaderMap, RemovedFieldsNeverShowAndTheirBytesStay) {
  HeaderMap headers;
  headers.Add("X-A", "a long value that does not fit in a short string");
  headers.Add("X-B", "b");
  headers.Add("X-C", "c");
  EXPECT_EQ(headers.Remove("x-a"), 1u);
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.entries()[0].name, "X-B");
  EXPECT_EQ(headers.entries()[1].name, "X-C");
  EXPECT_EQ(headers.Get("x-a"), nullptr);
  // A view taken before a field goes still reads its bytes: they stay in the map's text.
  HeaderMap kept;
  kept.Add("X-A", "first");
  absl::string_view first = *kept.Get("x-a");
  kept.Set("X-A", "second");
  kept.Remove("x-a");
  EXPECT_EQ(first, "first");

  // The codec's way: an empty field, then its name and value in pieces.
  headers.AddEmpty();
  EXPECT_EQ(headers.last().name, "");
  EXPECT_EQ(headers.last().id, FieldId::kOther);
  headers.AppendToLastName("X-");
  headers.AppendToLastName("D");
  headers.AppendToLastValue("d");
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers.entries()[2].name, "X-D");
  EXPECT_EQ(headers.entries()[2].value, "d");

  // Copies carry the fields; a move keeps the text where it is; a moved-from map is empty.
  HeaderMap copy = headers;
  EXPECT_EQ(copy.size(), 3u);
  copy = headers;
  EXPECT_EQ(copy.size(), 3u);
  EXPECT_EQ(copy.entries()[1].value, "c");
  EXPECT_NE(copy.entries()[1].value.data(), headers.entries()[1].value.data());
  const char* text = copy.entries()[2].name.data();
  HeaderMap moved = std::move(copy);
  EXPECT_EQ(moved.size(), 3u);
  EXPECT_EQ(moved.entries()[2].name.data(), text);
  EXPECT_TRUE(copy.empty());  // a moved-from map is specified to be empty
  copy.Add("X-E", "e");
  EXPECT_EQ(copy.size(), 1u);
}

TEST(HeaderMap, TextAcrossBlocksLargeFieldsAndViewsIntoTheMapItself) {
  HeaderMap headers;
  headers.Reserve(16);
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    headers.Add(absl::StrCat("X-Field-", i), std::string(100, static_cast<char>('a' + i % 26)));
  }
  headers.Add("X-Huge", std::string(10000, 'v'));
  // A value in pieces that outgrow the block they started in stays one piece.
  headers.AddEmpty();
  headers.AppendToLastName("X-Pieces");
  for (int i = 0; i < 10; ++i) {
    std::string piece(300, static_cast<char>('0' + i));
    headers.AppendToLastValue(piece);
    expected += piece;
  }
  ASSERT_EQ(headers.size(), 202u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(headers.entries()[i].name, absl::StrCat("X-Field-", i));
    EXPECT_EQ(headers.entries()[i].value, std::string(100, static_cast<char>('a' + i % 26)));
  }
  EXPECT_EQ(*headers.Get("x-huge"), std::string(10000, 'v'));
  EXPECT_EQ(headers.last().value, expected);
  // Add() and Set() may be given the map's own views, even when the copy needs a new block.
  headers.Add("X-Copy", *headers.Get("x-huge"));
  headers.Set(FieldId::kVia, "Via", *headers.Get("x-field-1"));
  EXPECT_EQ(*headers.Get("x-copy"), std::string(10000, 'v'));
  EXPECT_EQ(*headers.Get(FieldId::kVia), std::string(100, 'b'));
  EXPECT_GT(headers.MemoryBytes(), 20000u + 200 * 110);
}

// A long value that arrives a byte at a time (one TCP segment each) grows in place: the text
// the map holds stays within a small multiple of the value, not its square.
TEST(HeaderMap, AValueGrownByteByByteTakesLinearMemory) {
  HeaderMap headers;
  headers.AddEmpty();
  headers.AppendToLastName("X-Big");
  std::string value(64 * 1024, 'v');
  for (char c : value) {
    headers.AppendToLastValue(absl::string_view(&c, 1));
  }
  EXPECT_EQ(headers.last().value, value);
  EXPECT_LT(headers.TextCapacityForTest(), 6 * value.size());
}

TEST(HeaderMap, ARecycledListAndTextStartEmpty) {
  for (int round = 0; round < 3; ++round) {
    HeaderMap first;
    first.Reserve(16);
    first.Add("X-Huge", std::string(10000, 'v'));
    first.Add("X-Small", "s");
  }
  HeaderMap next;
  next.Reserve(16);
  EXPECT_TRUE(next.empty());
  EXPECT_EQ(next.Get("x-huge"), nullptr);
  EXPECT_EQ(next.Get("x-small"), nullptr);
  next.Add("X-New", "n");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next.entries()[0].value, "n");
}

TEST(RequestDecoder, ParsedFieldsAreNamed) {
  RequestRecorder recorder;
  auto decoder = RequestDecoder::Create(recorder, {});
  decoder->Feed("GET / HTTP/1.1\r\nhOsT: h\r\nX-Forwarded-For: 1.2.3.4\r\nX-B: c\r\n\r\n");
  ASSERT_EQ(recorder.heads.size(), 1u);
  const auto& entries = recorder.heads[0].headers.entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].id, FieldId::kHost);
  EXPECT_EQ(entries[1].id, FieldId::kXForwardedFor);
  EXPECT_EQ(entries[2].id, FieldId::kOther);
}

}  // namespace
}  // namespace confgate::http
