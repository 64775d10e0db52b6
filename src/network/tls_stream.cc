#include "network/tls_stream.h"

#include <event2/buffer.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <climits>

namespace confgate::network {
namespace {

// A record's worth of plaintext: the most one record carries. Reads take a little less, so a
// full one plus libevent's chain header fits a 16 KiB block (the rest follows in the next).
constexpr size_t kRecordSize = 16 * 1024;
constexpr size_t kReadSize = kRecordSize - 128;
constexpr int kMaxGatheredPieces = 16;

// SSL_get_error() reads the thread's error queue, so it must start empty; a failure elsewhere
// on this thread could have left something in it.
void ClearStaleErrors() {
  if (ERR_peek_error() != 0) {
    ERR_clear_error();
  }
}

}  // namespace

// The BIO between OpenSSL and the transport: reads hand out what the transport received,
// writes append to wire(). Writes never block, so OpenSSL never has a write to retry.
const BIO_METHOD* TlsStream::BioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* created =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "confgate tls stream");
    BIO_meth_set_write(created, &TlsStream::BioWrite);
    BIO_meth_set_read(created, &TlsStream::BioRead);
    BIO_meth_set_ctrl(created, &TlsStream::BioControl);
    BIO_meth_set_create(created, [](BIO* bio) {
      BIO_set_init(bio, 1);
      return 1;
    });
    return created;
  }();
  return method;
}

int TlsStream::BioWrite(BIO* bio, const char* data, int length) {
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (length <= 0) {
    return 0;
  }
  return evbuffer_add(self->wire_, data, static_cast<size_t>(length)) == 0 ? length : -1;
}

int TlsStream::BioRead(BIO* bio, char* data, int length) {
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (self->received_.empty()) {
    BIO_set_retry_read(bio);  // everything received so far is in OpenSSL's hands
    return -1;
  }
  size_t taken = std::min(self->received_.size(), static_cast<size_t>(std::max(length, 0)));
  std::copy_n(self->received_.data(), taken, data);
  self->received_.remove_prefix(taken);
  return static_cast<int>(taken);
}

long TlsStream::BioControl(BIO*, int command, long, void*) {
  // Only a flush means anything here, and there is nothing to flush: wire() is the socket's.
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

TlsStream::TlsStream(SSL* ssl, Role role) : ssl_(ssl), wire_(evbuffer_new()) {
  BIO* bio = BIO_new(BioMethod());
  if (bio != nullptr) {
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);
    bio_ready_ = true;
  }
  // An idle keep-alive connection gives its 17 KiB read buffer and its write buffer back.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  if (role == Role::kServer) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

bool TlsStream::client() const { return SSL_is_server(ssl_) == 0; }

TlsStream::~TlsStream() {
  SSL_free(ssl_);  // and the BIO
  if (wire_ != nullptr) {
    evbuffer_free(wire_);
  }
}

TlsStream::Result TlsStream::Fail() {
  failed_ = true;
  received_ = {};
  ERR_clear_error();
  return Result::kFailed;
}

// OpenSSL asks for more only once the BIO has handed over every received byte; anything left
// would be lost with the transport's receive area, so it is a failure, never a silent drop.
TlsStream::Result TlsStream::TookEverything(Result result) {
  if (!received_.empty()) {
    return Fail();
  }
  return result;
}

TlsStream::Result TlsStream::FinishHandshakeStep(int result) {
  if (result == 1) {
    established_ = true;
    return Result::kOk;
  }
  int error = SSL_get_error(ssl_, result);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    return Result::kOk;
  }
  return Fail();
}

TlsStream::Result TlsStream::StartHandshake() {
  ClearStaleErrors();
  return FinishHandshakeStep(SSL_do_handshake(ssl_));
}

TlsStream::Result TlsStream::Receive(absl::string_view ciphertext, evbuffer* plaintext) {
  if (failed_) {
    return Result::kFailed;
  }
  ClearStaleErrors();
  received_ = ciphertext;
  if (!established_) {
    Result result = FinishHandshakeStep(SSL_do_handshake(ssl_));
    if (result != Result::kOk || !established_) {
      return TookEverything(result);  // still in the handshake: OpenSSL asks for more
    }
  }
  // Until OpenSSL asks for more: every byte received must be taken now, since the transport
  // reuses its receive area for the next read.
  thread_local char clear[kReadSize];
  for (;;) {
    ClearStaleErrors();  // a successful call can leave an entry that would change the verdict
    int n = SSL_read(ssl_, clear, sizeof(clear));
    if (n > 0) {
      if (evbuffer_add(plaintext, clear, static_cast<size_t>(n)) != 0) {
        return Fail();
      }
      continue;
    }
    int error = SSL_get_error(ssl_, n);
    if (error == SSL_ERROR_WANT_READ) {
      return TookEverything(Result::kOk);
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
      received_ = {};  // nothing counts after close_notify
      return Result::kPeerClosed;
    }
    return Fail();
  }
}

bool TlsStream::Send(evbuffer* plaintext) {
  if (failed_) {
    return false;
  }
  ClearStaleErrors();
  thread_local char gathered[kRecordSize];
  size_t left = evbuffer_get_length(plaintext);
  while (left > 0) {
    evbuffer_iovec pieces[kMaxGatheredPieces];
    int count = evbuffer_peek(plaintext, static_cast<ev_ssize_t>(kRecordSize), nullptr, pieces,
                              kMaxGatheredPieces);
    const char* data = static_cast<const char*>(pieces[0].iov_base);
    size_t size = pieces[0].iov_len;
    if (count > 1 && size < kRecordSize) {
      // A response added in pieces (head, then body) goes out as one record, not one each.
      size = std::min(left, kRecordSize);
      evbuffer_copyout(plaintext, gathered, size);
      data = gathered;
    }
    ClearStaleErrors();
    int n = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(size, INT_MAX)));
    if (n <= 0) {
      Fail();
      return false;
    }
    evbuffer_drain(plaintext, static_cast<size_t>(n));
    left -= static_cast<size_t>(n);
  }
  return true;
}

void TlsStream::Shutdown() {
  if (established_ && !failed_) {
    ClearStaleErrors();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

}  // namespace confgate::network
