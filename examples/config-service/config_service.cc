// config-service: a Consul-style key/value config service on libevent's evhttp.
//
//   config-service --port N [--host 127.0.0.1] --id NAME [--seed FILE] [--fault MODE]
//                  [--delay-ms N]
//
// Prints {"event":"listening","id":NAME,"port":N} on stdout once it accepts connections.
// Endpoints: GET/HEAD/PUT/DELETE /v1/kv/<key> (X-Config-Index, ETag, blocking ?index=&wait=),
// GET /health, POST /fault?mode=none|error|hang|delay|reset|unhealthy[&delay_ms=N], GET /stats,
// GET /debug/requests, /echo, GET /large?bytes=N[&chunked=1], POST /sink.
// Every response carries X-Replica-Id.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace {

// kUnhealthy: /health answers 503 while every other request is served (an election).
enum class Fault { kNone, kError, kHang, kDelay, kReset, kUnhealthy };

struct Entry {
  std::string value;
  uint64_t modify_index = 0;
};

struct RecordedRequest {
  std::string method;
  std::string uri;
  std::vector<std::pair<std::string, std::string>> headers;
  size_t body_length = 0;
};

struct ParkedRead;

struct Service {
  event_base* base = nullptr;
  std::string id;
  std::map<std::string, Entry> store;
  uint64_t index = 0;
  Fault fault = Fault::kNone;
  int delay_ms = 1000;
  uint64_t connections_accepted = 0;
  uint64_t requests = 0;
  std::deque<RecordedRequest> recent;
  std::vector<ParkedRead*> parked;
};

Service service;

struct ParkedRead {
  evhttp_request* request;
  std::string key;
  event* timer;
};

void AppendJson(const std::string& value, std::string& out) {
  out.push_back('"');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

const char* MethodName(evhttp_cmd_type command) {
  switch (command) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    case EVHTTP_REQ_PATCH:
      return "PATCH";
    default:
      return "OTHER";
  }
}

std::string QueryValue(evhttp_request* request, const char* name) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(request);
  const char* query = evhttp_uri_get_query(uri);
  if (query == nullptr) {
    return "";
  }
  evkeyvalq params;
  if (evhttp_parse_query_str(query, &params) != 0) {
    return "";
  }
  const char* value = evhttp_find_header(&params, name);
  std::string result = value != nullptr ? value : "";
  evhttp_clear_headers(&params);
  return result;
}

// "30s", "500ms", "5m" -> milliseconds; `fallback` when absent or malformed.
int64_t ParseWaitMs(const std::string& text, int64_t fallback) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  int64_t number = 0;
  if (digits == 0 || !absl::SimpleAtoi(text.substr(0, digits), &number)) {
    return fallback;
  }
  std::string unit = text.substr(digits);
  if (unit == "ms") return number;
  if (unit == "s" || unit.empty()) return number * 1000;
  if (unit == "m") return number * 60'000;
  return fallback;
}

void AddHeader(evhttp_request* request, const char* name, const std::string& value) {
  evhttp_add_header(evhttp_request_get_output_headers(request), name, value.c_str());
}

void Reply(evhttp_request* request, int code, const std::string& body,
           const char* content_type = "text/plain") {
  evbuffer* buffer = evbuffer_new();
  evbuffer_add(buffer, body.data(), body.size());
  if (!body.empty()) {
    AddHeader(request, "Content-Type", content_type);
  }
  evhttp_send_reply(request, code, nullptr, buffer);
  evbuffer_free(buffer);
}

void ReplyKey(evhttp_request* request, const std::string& key) {
  auto it = service.store.find(key);
  if (it == service.store.end()) {
    AddHeader(request, "X-Config-Index", absl::StrCat(service.index));
    Reply(request, 404, "");
    return;
  }
  std::string etag = absl::StrCat("\"", it->second.modify_index, "\"");
  AddHeader(request, "X-Config-Index", absl::StrCat(it->second.modify_index));
  AddHeader(request, "ETag", etag);
  const char* if_none_match =
      evhttp_find_header(evhttp_request_get_input_headers(request), "If-None-Match");
  if (if_none_match != nullptr && etag == if_none_match) {
    evhttp_send_reply(request, 304, "Not Modified", nullptr);
    return;
  }
  Reply(request, 200, it->second.value, "application/octet-stream");
}

void WakeParked(const std::string& key) {
  std::vector<ParkedRead*> keep;
  for (ParkedRead* parked : service.parked) {
    if (parked->key == key) {
      event_free(parked->timer);
      ReplyKey(parked->request, parked->key);
      delete parked;
    } else {
      keep.push_back(parked);
    }
  }
  service.parked.swap(keep);
}

void OnParkedTimeout(evutil_socket_t, short, void* arg) {
  auto* parked = static_cast<ParkedRead*>(arg);
  std::erase(service.parked, parked);
  event_free(parked->timer);
  ReplyKey(parked->request, parked->key);
  delete parked;
}

void HandleKv(evhttp_request* request, const std::string& key) {
  evhttp_cmd_type command = evhttp_request_get_command(request);
  if (command == EVHTTP_REQ_GET || command == EVHTTP_REQ_HEAD) {
    std::string index_text = QueryValue(request, "index");
    uint64_t wait_index = 0;
    if (!index_text.empty() && absl::SimpleAtoi(index_text, &wait_index)) {
      auto it = service.store.find(key);
      uint64_t current = it == service.store.end() ? 0 : it->second.modify_index;
      if (current <= wait_index) {
        int64_t wait_ms =
            std::min<int64_t>(ParseWaitMs(QueryValue(request, "wait"), 300'000), 600'000);
        auto* parked = new ParkedRead{request, key, nullptr};
        parked->timer = evtimer_new(service.base, &OnParkedTimeout, parked);
        timeval tv{wait_ms / 1000, static_cast<suseconds_t>((wait_ms % 1000) * 1000)};
        evtimer_add(parked->timer, &tv);
        service.parked.push_back(parked);
        return;
      }
    }
    ReplyKey(request, key);
    return;
  }
  if (command == EVHTTP_REQ_PUT || command == EVHTTP_REQ_POST) {
    evbuffer* input = evhttp_request_get_input_buffer(request);
    std::string value(evbuffer_get_length(input), '\0');
    evbuffer_copyout(input, value.data(), value.size());
    Entry& entry = service.store[key];
    entry.value = std::move(value);
    entry.modify_index = ++service.index;
    AddHeader(request, "X-Config-Index", absl::StrCat(entry.modify_index));
    Reply(request, 200, "true", "application/json");
    WakeParked(key);
    return;
  }
  if (command == EVHTTP_REQ_DELETE) {
    service.store.erase(key);
    ++service.index;
    AddHeader(request, "X-Config-Index", absl::StrCat(service.index));
    Reply(request, 200, "true", "application/json");
    WakeParked(key);
    return;
  }
  Reply(request, 405, "method not allowed\n");
}

struct LargeBody {
  evhttp_request* request;
  uint64_t remaining;
  uint64_t offset = 0;
};

void SendLargePiece(evhttp_connection*, void* arg) {
  auto* body = static_cast<LargeBody*>(arg);
  if (body->remaining == 0) {
    evhttp_send_reply_end(body->request);
    delete body;
    return;
  }
  size_t piece = static_cast<size_t>(std::min<uint64_t>(body->remaining, 64 * 1024));
  std::string bytes(piece, '\0');
  for (size_t i = 0; i < piece; ++i) {
    bytes[i] = static_cast<char>('a' + (body->offset + i) % 26);
  }
  body->offset += piece;
  body->remaining -= piece;
  evbuffer* buffer = evbuffer_new();
  evbuffer_add(buffer, bytes.data(), bytes.size());
  evhttp_send_reply_chunk_with_cb(body->request, buffer, &SendLargePiece, body);
  evbuffer_free(buffer);
}

void HandleLarge(evhttp_request* request) {
  uint64_t bytes = 0;
  if (!absl::SimpleAtoi(QueryValue(request, "bytes"), &bytes)) {
    Reply(request, 400, "bytes must be a number\n");
    return;
  }
  bool chunked = QueryValue(request, "chunked") == "1";
  if (!chunked) {
    AddHeader(request, "Content-Length", absl::StrCat(bytes));
  }
  AddHeader(request, "Content-Type", "application/octet-stream");
  evhttp_send_reply_start(request, 200, "OK");
  if (evhttp_request_get_command(request) == EVHTTP_REQ_HEAD) {
    evhttp_send_reply_end(request);
    return;
  }
  SendLargePiece(nullptr, new LargeBody{request, bytes});
}

std::string RequestJson(evhttp_request* request) {
  std::string out = "{\"method\":";
  AppendJson(MethodName(evhttp_request_get_command(request)), out);
  out.append(",\"uri\":");
  AppendJson(evhttp_request_get_uri(request), out);
  out.append(",\"headers\":[");
  bool first = true;
  evkeyvalq* headers = evhttp_request_get_input_headers(request);
  for (evkeyval* header = headers->tqh_first; header != nullptr; header = header->next.tqe_next) {
    out.append(first ? "[" : ",[");
    first = false;
    AppendJson(header->key, out);
    out.push_back(',');
    AppendJson(header->value, out);
    out.push_back(']');
  }
  absl::StrAppend(&out, "],\"body_length\":",
                  evbuffer_get_length(evhttp_request_get_input_buffer(request)), "}");
  return out;
}

void Record(evhttp_request* request) {
  RecordedRequest recorded;
  recorded.method = MethodName(evhttp_request_get_command(request));
  recorded.uri = evhttp_request_get_uri(request);
  evkeyvalq* headers = evhttp_request_get_input_headers(request);
  for (evkeyval* header = headers->tqh_first; header != nullptr; header = header->next.tqe_next) {
    recorded.headers.emplace_back(header->key, header->value);
  }
  recorded.body_length = evbuffer_get_length(evhttp_request_get_input_buffer(request));
  service.recent.push_back(std::move(recorded));
  if (service.recent.size() > 100) {
    service.recent.pop_front();
  }
}

std::string RecentJson() {
  std::string out = "[";
  bool first_request = true;
  for (const RecordedRequest& request : service.recent) {
    out.append(first_request ? "{" : ",{");
    first_request = false;
    out.append("\"method\":");
    AppendJson(request.method, out);
    out.append(",\"uri\":");
    AppendJson(request.uri, out);
    out.append(",\"headers\":[");
    bool first = true;
    for (const auto& [name, value] : request.headers) {
      out.append(first ? "[" : ",[");
      first = false;
      AppendJson(name, out);
      out.push_back(',');
      AppendJson(value, out);
      out.push_back(']');
    }
    absl::StrAppend(&out, "],\"body_length\":", request.body_length, "}");
  }
  out.append("]");
  return out;
}

void ResetConnection(evutil_socket_t, short, void* arg) {
  auto* connection = static_cast<evhttp_connection*>(arg);
  bufferevent* bev = evhttp_connection_get_bufferevent(connection);
  int fd = bufferevent_getfd(bev);
  if (fd >= 0) {
    linger hard{1, 0};  // close with RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  }
  evhttp_connection_free(connection);
}

void Dispatch(evhttp_request* request);

void OnDelayed(evutil_socket_t, short, void* arg) { Dispatch(static_cast<evhttp_request*>(arg)); }

void Dispatch(evhttp_request* request) {
  const char* path_raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(request));
  std::string path = path_raw != nullptr ? path_raw : "/";
  if (path.rfind("/v1/kv/", 0) == 0) {
    HandleKv(request, path.substr(7));
  } else if (path == "/health") {
    Reply(request, 200, "ok\n");
  } else if (path == "/echo") {
    evbuffer* input = evhttp_request_get_input_buffer(request);
    if (evbuffer_get_length(input) > 0) {
      const char* type =
          evhttp_find_header(evhttp_request_get_input_headers(request), "Content-Type");
      evhttp_add_header(evhttp_request_get_output_headers(request), "Content-Type",
                        type != nullptr ? type : "application/octet-stream");
      evhttp_send_reply(request, 200, "OK", input);
    } else {
      Reply(request, 200, RequestJson(request), "application/json");
    }
  } else if (path == "/large") {
    HandleLarge(request);
  } else if (path == "/sink") {
    Reply(request, 200,
          absl::StrCat("{\"bytes\":", evbuffer_get_length(evhttp_request_get_input_buffer(request)),
                       "}"),
          "application/json");
  } else {
    Reply(request, 404, "not found\n");
  }
}

void OnRequest(evhttp_request* request, void*) {
  AddHeader(request, "X-Replica-Id", service.id);
  const char* path_raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(request));
  std::string path = path_raw != nullptr ? path_raw : "/";
  // Control endpoints are never faulted and not recorded.
  if (path == "/fault") {
    std::string mode = QueryValue(request, "mode");
    std::map<std::string, Fault> modes = {
        {"none", Fault::kNone},   {"error", Fault::kError}, {"hang", Fault::kHang},
        {"delay", Fault::kDelay}, {"reset", Fault::kReset}, {"unhealthy", Fault::kUnhealthy}};
    auto it = modes.find(mode);
    if (it == modes.end()) {
      Reply(request, 400, "mode must be none, error, hang, delay, reset or unhealthy\n");
      return;
    }
    service.fault = it->second;
    int delay = 0;
    if (absl::SimpleAtoi(QueryValue(request, "delay_ms"), &delay) && delay >= 0) {
      service.delay_ms = delay;
    }
    Reply(request, 200, absl::StrCat("fault ", mode, "\n"));
    return;
  }
  if (path == "/stats") {
    Reply(request, 200,
          absl::StrFormat("{\"id\":\"%s\",\"connections_accepted\":%d,\"requests\":%d,"
                          "\"parked\":%d,\"index\":%d}",
                          service.id, service.connections_accepted, service.requests,
                          service.parked.size(), service.index),
          "application/json");
    return;
  }
  if (path == "/debug/requests") {
    Reply(request, 200, RecentJson(), "application/json");
    return;
  }
  ++service.requests;
  Record(request);
  switch (service.fault) {
    case Fault::kNone:
      Dispatch(request);
      return;
    case Fault::kError:
      Reply(request, 500, "fault\n");
      return;
    case Fault::kUnhealthy:
      if (path == "/health") {
        Reply(request, 503, "unhealthy\n");
      } else {
        Dispatch(request);
      }
      return;
    case Fault::kHang:
      return;  // never answered
    case Fault::kDelay: {
      timeval tv{service.delay_ms / 1000,
                 static_cast<suseconds_t>((service.delay_ms % 1000) * 1000)};
      event_base_once(service.base, -1, EV_TIMEOUT, &OnDelayed, request, &tv);
      return;
    }
    case Fault::kReset: {
      timeval now{0, 0};
      event_base_once(service.base, -1, EV_TIMEOUT, &ResetConnection,
                      evhttp_request_get_connection(request), &now);
      return;
    }
  }
}

bufferevent* OnNewConnection(event_base* base, void*) {
  ++service.connections_accepted;
  return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

void LoadSeed(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) {
      continue;
    }
    Entry& entry = service.store[line.substr(0, eq)];
    entry.value = line.substr(eq + 1);
    entry.modify_index = ++service.index;
  }
}

void OnSignal(evutil_socket_t, short, void* arg) {
  event_base_loopexit(static_cast<event_base*>(arg), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  service.id = "replica";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--port") {
      port = std::atoi(value.c_str());
      ++i;
    } else if (arg == "--host") {
      host = value;
      ++i;
    } else if (arg == "--id") {
      service.id = value;
      ++i;
    } else if (arg == "--seed") {
      LoadSeed(value);
      ++i;
    } else if (arg == "--fault") {
      service.fault = value == "error"   ? Fault::kError
                      : value == "hang"  ? Fault::kHang
                      : value == "delay" ? Fault::kDelay
                      : value == "reset" ? Fault::kReset
                                         : Fault::kNone;
      ++i;
    } else if (arg == "--delay-ms") {
      service.delay_ms = std::atoi(value.c_str());
      ++i;
    } else {
      std::fprintf(stderr, "config-service: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  service.base = event_base_new();
  evhttp* http = evhttp_new(service.base);
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                       EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
  evhttp_set_max_body_size(http, 1LL << 31);
  evhttp_set_gencb(http, &OnRequest, nullptr);
  evhttp_set_bevcb(http, &OnNewConnection, nullptr);
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http, host.c_str(), port);
  if (bound == nullptr) {
    std::fprintf(stderr, "config-service: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&addr), &len);
  int bound_port = addr.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  std::printf("{\"event\":\"listening\",\"id\":\"%s\",\"port\":%d}\n", service.id.c_str(),
              bound_port);
  std::fflush(stdout);
  event* term = evsignal_new(service.base, SIGTERM, &OnSignal, service.base);
  event* intr = evsignal_new(service.base, SIGINT, &OnSignal, service.base);
  event_add(term, nullptr);
  event_add(intr, nullptr);
  event_base_dispatch(service.base);
  event_free(term);
  event_free(intr);
  evhttp_free(http);
  event_base_free(service.base);
  return 0;
}
