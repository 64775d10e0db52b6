#include "config/yaml_document.h"

#include <yaml-cpp/eventhandler.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "confgate/common/file.h"

namespace confgate::config {
namespace {

int LineOf(const YAML::Mark& mark) { return mark.line < 0 ? 0 : mark.line + 1; }

// Records where each document starts (its "---", when it has one); ignores the content.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<int> lines;

  // YAML::EventHandler
  void OnDocumentStart(const YAML::Mark& mark) override { lines.push_back(LineOf(mark)); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Counts the nodes of every document without building them (yaml-cpp's tree costs a few
// hundred bytes a node), stopping early past `limit`.
class NodeCounter final : public YAML::EventHandler {
 public:
  explicit NodeCounter(size_t limit) : limit_(limit) {}
  size_t nodes = 0;
  int line_past_limit = 0;  // where the count went past the limit

  // YAML::EventHandler
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Count(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Count(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Count(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Count(mark);
  }
  void OnMapEnd() override {}

 private:
  void Count(const YAML::Mark& mark) {
    if (++nodes == limit_ + 1) {
      line_past_limit = LineOf(mark);
    }
  }
  size_t limit_;
};

// The line of the second document; only called once LoadAll found one, so it parses again.
int SecondDocumentLine(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  DocumentStarts starts;
  try {
    while (starts.lines.size() < 2 && parser.HandleNextDocument(starts)) {
    }
  } catch (const YAML::Exception&) {
    // LoadAll read the same text without error; nothing more to learn here.
  }
  return starts.lines.size() >= 2 ? starts.lines[1] : 0;
}

}  // namespace

std::optional<YAML::Node> ParseSingleDocument(const std::string& text,
                                              std::vector<ConfigError>& errors) {
  // Counted before the tree is built: 8 MiB of "[1,1,1,...]" would take ~2 GiB as a tree.
  NodeCounter counter(kMaxConfigNodes);
  try {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    while (counter.nodes <= kMaxConfigNodes && parser.HandleNextDocument(counter)) {
    }
  } catch (const YAML::Exception&) {
    // A syntax error: LoadAll below reports it with its line.
  }
  if (counter.nodes > kMaxConfigNodes) {
    errors.push_back(ConfigError{"", counter.line_past_limit,
                                 absl::StrCat("the upstream file has more than ", kMaxConfigNodes,
                                              " YAML nodes (values, lists and maps)")});
    return std::nullopt;
  }
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    errors.push_back(ConfigError{"", LineOf(e.mark),
                                 absl::StrCat("YAML syntax error: ", Shortened(e.msg, 200))});
    return std::nullopt;
  }
  if (documents.size() > 1) {
    errors.push_back(ConfigError{
        "", SecondDocumentLine(text),
        "a second YAML document starts here; the upstream file must be a single document"});
    return std::nullopt;
  }
  return documents.empty() ? YAML::Node() : documents[0];
}

}  // namespace confgate::config
