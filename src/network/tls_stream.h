// The TLS layer of a socket transport: OpenSSL's record layer between the transport's plaintext
// buffers and the bytes that cross the socket. The transport does every system call itself —
// one recv() per readable event and one send() per flush, as for plain connections — and hands
// the ciphertext in and takes it out here; OpenSSL never touches the socket. (libevent's
// OpenSSL bufferevent read through read(2), tried a second read until EAGAIN, and armed and
// disarmed the write event around every response: seven system calls per proxied request on
// the TLS side against HAProxy's six.)
#pragma once

#include <cstddef>

#include "absl/strings/string_view.h"

struct bio_method_st;
struct bio_st;
struct evbuffer;
struct ssl_st;

namespace confgate::network {

class TlsStream {
 public:
  enum class Role { kServer, kClient };
  enum class Result {
    kOk,          // everything received was taken; decrypted bytes (if any) are in plaintext
    kPeerClosed,  // the peer sent close_notify
    kFailed,      // a handshake failure, a bad record, an alert: the connection is unusable
  };

  // Takes ownership of `ssl` (a fresh session from ServerTls or ClientTls).
  TlsStream(ssl_st* ssl, Role role);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // False when the session could not be set up (out of memory): do not use it.
  bool usable() const { return wire_ != nullptr && bio_ready_; }
  bool established() const { return established_; }
  bool client() const;

  // Client: writes the ClientHello into wire().
  Result StartHandshake();
  // Takes all of `ciphertext` (as received); what it decrypts is added to `plaintext`, and any
  // answer of its own (handshake messages, session tickets, alerts) goes to wire().
  Result Receive(absl::string_view ciphertext, evbuffer* plaintext);
  // Encrypts and drains all of `plaintext` into wire(); false when the session failed.
  // Established sessions only.
  bool Send(evbuffer* plaintext);
  // Queues close_notify in wire() (established sessions that have not failed).
  void Shutdown();

  // Ciphertext waiting for the socket.
  evbuffer* wire() { return wire_; }

 private:
  static const bio_method_st* BioMethod();
  static int BioWrite(bio_st* bio, const char* data, int length);
  static int BioRead(bio_st* bio, char* data, int length);
  static long BioControl(bio_st* bio, int command, long number, void* pointer);
  Result FinishHandshakeStep(int result);
  Result TookEverything(Result result);
  Result Fail();

  ssl_st* ssl_;
  evbuffer* wire_;
  absl::string_view received_;  // ciphertext the BIO has not yet handed to OpenSSL
  bool bio_ready_ = false;
  bool established_ = false;
  bool failed_ = false;
};

}  // namespace confgate::network
