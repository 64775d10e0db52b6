// A connection's byte stream: an input and an output buffer over a socket, with readiness
// reported to one owner; plain, or TLS through network::TlsStream (OpenSSL's records, with
// every system call made here).
//
// It exists for the cost per request. A libevent socket bufferevent asks the kernel how much
// is readable (ioctl FIONREAD) before every read and arms and disarms the write event around
// every write (two epoll_ctl): six system calls per proxied request beyond the four reads and
// writes. This transport reads with one recv() per readable event, and sends output from the
// loop as soon as the current callbacks are done (event::PassWork); it has a write event only
// once the kernel did not take everything. It holds its buffers only while bytes pass through:
// empty ones go back to a per-thread spare list.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>

#include "confgate/event/dispatcher.h"

struct evbuffer;
struct ssl_st;

namespace confgate::network {

// What a transport reports. Always called from the event loop, never from inside a Transport
// method, so an owner may destroy the transport in any callback (and must not touch it after).
class TransportCallbacks {
 public:
  virtual ~TransportCallbacks() = default;
  // An outgoing connection is open (for TLS: the handshake and verification succeeded).
  virtual void OnTransportConnected() = 0;
  // input() holds new bytes.
  virtual void OnTransportReadable() = 0;
  // output() was written out completely.
  virtual void OnTransportDrained() = 0;
  // EOF, a socket error, or a failed connect (`connect_failed` when it never opened).
  virtual void OnTransportClosed(bool connect_failed) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // An accepted, non-blocking socket; the transport owns and closes it. Reading starts at once.
  // Should making the transport throw (std::bad_alloc), the socket is still the caller's.
  static std::unique_ptr<Transport> Accepted(event::Dispatcher& dispatcher, int fd,
                                             TransportCallbacks& callbacks);
  // The same for TLS: the transport owns `session` (from ServerTls) and runs the server side
  // of the handshake on the first bytes; input() holds plaintext. Without a session the
  // connection is closed (OnTransportClosed from the loop), never served in the clear.
  static std::unique_ptr<Transport> AcceptedTls(event::Dispatcher& dispatcher, int fd,
                                                ssl_st* session, TransportCallbacks& callbacks);
  // A non-blocking connect to `address`; the outcome arrives as OnTransportConnected or
  // OnTransportClosed(true). Output added before the connection opens is sent when it does.
  static std::unique_ptr<Transport> Connect(event::Dispatcher& dispatcher, const sockaddr* address,
                                            socklen_t length, TransportCallbacks& callbacks);
  // The same over TLS with `session` (from ClientTls, owned by the transport): open once the
  // handshake is done and the peer verified; a failed handshake, or no session, is a failed
  // connect.
  static std::unique_ptr<Transport> ConnectTls(event::Dispatcher& dispatcher,
                                               const sockaddr* address, socklen_t length,
                                               ssl_st* session, TransportCallbacks& callbacks);

  // Whoever owns the connection now gets its events (a pooled connection changes hands).
  virtual void set_callbacks(TransportCallbacks& callbacks) = 0;
  virtual evbuffer* input() = 0;
  // Bytes in input() (without taking a buffer for an idle connection).
  virtual size_t input_length() const = 0;
  // Bytes added here are sent without further calls. Valid until the loop runs again (an
  // emptied buffer may go back to the spares): ask again rather than keep it.
  virtual evbuffer* output() = 0;
  // Bytes not yet taken by the kernel.
  virtual size_t output_length() const = 0;
  // The owner expects no bytes for now (an idle keep-alive connection): empty buffers go back
  // to the spares until bytes come again.
  virtual void ReleaseIdleBuffers() = 0;
  virtual void EnableReading() = 0;
  virtual void DisableReading() = 0;
  // Reading pauses while input() holds `bytes` or more, and resumes as the owner drains it
  // (pipelined requests wait in the kernel). 0: no limit.
  virtual void SetReadLimit(size_t bytes) = 0;
  // No more events: reading and writing stop (the transport is about to be destroyed).
  virtual void Silence() = 0;
  // The connection is being cut short (a response broke off): a TLS session ends without
  // close_notify, so the peer cannot take a truncated message for a complete one.
  virtual void Abort() = 0;
  // True once the peer ended a TLS session with close_notify: the end of a close-delimited
  // message is then known. A bare close (plain TCP, or TLS without close_notify) may be a
  // crash mid-message, and answers false.
  virtual bool PeerClosedCleanly() const = 0;
  // The socket's local address as a Host value ("1.2.3.4:8080"; empty when unknown).
  virtual std::string LocalAuthority() const = 0;
};

}  // namespace confgate::network
