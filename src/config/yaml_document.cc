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
