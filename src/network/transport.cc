#include "confgate/network/transport.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "confgate/common/recycling.h"
#include "confgate/network/socket.h"
#include "network/tls_stream.h"

namespace confgate::network {
namespace {

// One read takes at most this much: about what libevent's bufferevents read. It lands in a
// per-thread area and is copied into the input buffer, which sizes its chain to what came: a
// 1 KiB block for most requests and responses of a config service, which malloc hands out from
// its per-thread cache. (A 16 KiB chain per read cost more in malloc and free than parsing the
// message.) A full read plus libevent's chain header still fits a 16 KiB block.
constexpr size_t kReadSize = 16 * 1024 - 128;
constexpr size_t kTlsReadSize = 32 * 1024;
constexpr int kMaxWriteVectors = 16;

struct FreeBuffer {
  void operator()(evbuffer* buffer) const { evbuffer_free(buffer); }
};

// Empty buffers between uses, per thread: a connection holds buffers only while bytes pass
// through it (most client connections of a config service sit idle between polls). Enough for
// the connections busy at one moment; beyond that, idle memory wins.
struct SpareBuffers : SpareStack<evbuffer*, FreeBuffer> {
  SpareBuffers() : SpareStack(512) {}
};

evbuffer* TakeBuffer() {
  SpareBuffers* spares = kRecycleMemory ? PerThread<SpareBuffers>::Get() : nullptr;
  evbuffer* buffer = spares != nullptr ? spares->Take() : nullptr;
  return buffer != nullptr ? buffer : evbuffer_new();
}

// `buffer` is empty and has no callbacks.
void ReturnBuffer(evbuffer* buffer) {
  SpareBuffers* spares = kRecycleMemory ? PerThread<SpareBuffers>::Get() : nullptr;
  if (spares == nullptr || !spares->Keep(buffer)) {
    evbuffer_free(buffer);
  }
}

class SocketTransport final : public Transport, private event::PassWork {
 public:
  SocketTransport(event::Dispatcher& dispatcher, int fd, bool connecting,
                  TransportCallbacks& callbacks, std::unique_ptr<TlsStream> tls = nullptr)
      : dispatcher_(dispatcher),
        callbacks_(&callbacks),
        tls_(std::move(tls)),
        fd_(fd),
        connecting_(connecting) {
    read_event_ = event_new(dispatcher_.base(), fd_, EV_READ | EV_PERSIST,
                            &SocketTransport::OnReadEvent, this);
    if (connecting_) {
      if (fd_ >= 0) {
        ArmWriteEvent();  // writable = the connect finished, one way or another
      } else {
        write_event_ = MakeWriteEvent();
      }
    } else {
      event_add(read_event_, nullptr);
      reading_ = true;
    }
  }

  ~SocketTransport() override {
    event_free(read_event_);
    if (write_event_ != nullptr) {
      event_free(write_event_);
    }
    if (watching_input_) {
      evbuffer_remove_cb(input_, &SocketTransport::OnInputChanged, this);
    }
    for (evbuffer* buffer : {input_, output_}) {
      if (buffer != nullptr) {
        evbuffer_drain(buffer, evbuffer_get_length(buffer));
        ReturnBuffer(buffer);
      }
    }
    if (fd_ >= 0) {
      if (tls_ != nullptr && !closed_ && !aborted_ && wire_length() == 0) {
        // close_notify, once and without waiting: the peer learns the session ended on
        // purpose. Not after Abort() (a cut message must not look complete), nor behind
        // ciphertext the kernel has not taken (it would not get there).
        tls_->Shutdown();
        SendOnce(tls_->wire());
      }
      close(fd_);
    }
  }

  // Reports a connect that failed before it started (from the loop, like any other outcome).
  void FailSoon() {
    failed_ = true;
    connecting_ = true;
    if (write_event_ == nullptr) {
      write_event_ = MakeWriteEvent();
    }
    event_del(read_event_);
    reading_ = false;
    event_del(write_event_);
    event_active(write_event_, EV_WRITE, 0);
  }

  // confgate::network::Transport
  void set_callbacks(TransportCallbacks& callbacks) override { callbacks_ = &callbacks; }
  evbuffer* input() override {
    if (input_ == nullptr) {
      input_ = TakeBuffer();
    }
    return input_;
  }
  size_t input_length() const override {
    return input_ != nullptr ? evbuffer_get_length(input_) : 0;
  }
  // Whoever asks for the output is about to add to it: what they add goes out once the
  // current callbacks are done (no system call now, and no buffer callback per addition).
  // While the write event is armed the kernel's buffer is full: it fires when there is room.
  evbuffer* output() override {
    if (output_ == nullptr) {
      output_ = TakeBuffer();
    }
    if (!write_armed_ && !connecting_ && !closed_ && !silenced_) {
      dispatcher_.Schedule(*this);
    }
    return output_;
  }
  size_t output_length() const override {
    return (output_ != nullptr ? evbuffer_get_length(output_) : 0) + wire_length();
  }
  void ReleaseIdleBuffers() override {
    if (input_ != nullptr && !watching_input_ && evbuffer_get_length(input_) == 0) {
      ReturnBuffer(input_);
      input_ = nullptr;
    }
    ReleaseOutputIfEmpty();
  }

  void EnableReading() override {
    want_reading_ = true;
    UpdateReading();
  }
  void DisableReading() override {
    want_reading_ = false;
    UpdateReading();
  }
  void SetReadLimit(size_t bytes) override { read_limit_ = bytes; }

  void Abort() override { aborted_ = true; }
  bool PeerClosedCleanly() const override { return peer_close_notify_; }
  std::string LocalAuthority() const override { return network::LocalAuthority(fd_); }

  void Silence() override {
    silenced_ = true;
    event_del(read_event_);
    DisarmWriteEvent();
    dispatcher_.Cancel(*this);
    reading_ = false;
  }

 private:
  bool AtReadLimit() const { return read_limit_ != 0 && input_length() >= read_limit_; }

  // The read event is armed when the owner wants bytes, the connection is open, and the input
  // is below its limit; the epoll registration changes only when that answer changes.
  void UpdateReading() {
    bool should = want_reading_ && !connecting_ && !closed_ && !silenced_ && !AtReadLimit();
    if (should == reading_) {
      return;
    }
    reading_ = should;
    if (should) {
      event_add(read_event_, nullptr);
    } else {
      event_del(read_event_);
    }
    // While held back by the limit, watch the owner drain the input.
    bool watch = want_reading_ && !should && AtReadLimit();
    if (watch != watching_input_) {
      watching_input_ = watch;
      if (watch) {
        evbuffer_add_cb(input_, &SocketTransport::OnInputChanged, this);
      } else {
        evbuffer_remove_cb(input_, &SocketTransport::OnInputChanged, this);
      }
    }
  }

  static void OnInputChanged(evbuffer*, const evbuffer_cb_info* info, void* arg) {
    auto* self = static_cast<SocketTransport*>(arg);
    if (info->n_deleted > 0) {
      self->UpdateReading();
    }
  }

  static void OnReadEvent(evutil_socket_t, short, void* arg) {
    static_cast<SocketTransport*>(arg)->Read();
  }

  static void OnWriteEvent(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SocketTransport*>(arg);
    if (self->connecting_) {
      self->FinishConnect();
      return;
    }
    self->Write();
  }

  // event::PassWork: the owner's callbacks are done; send what they added (or end a TLS
  // session whose peer sent close_notify after its last data).
  void RunPassWork() override {
    if (close_pending_) {
      close_pending_ = false;
      Close(false);
      return;
    }
    Write();
  }

  ::event* MakeWriteEvent() {
    return event_new(dispatcher_.base(), fd_, EV_WRITE | EV_PERSIST, &SocketTransport::OnWriteEvent,
                     this);
  }
  // The write event exists only for connections that had to wait for the kernel.
  void ArmWriteEvent() {
    if (write_event_ == nullptr) {
      write_event_ = MakeWriteEvent();
    }
    event_add(write_event_, nullptr);
    write_armed_ = true;
  }
  void DisarmWriteEvent() {
    if (write_event_ != nullptr) {
      event_del(write_event_);
    }
    write_armed_ = false;
  }

  void ReleaseOutputIfEmpty() {
    if (output_ != nullptr && !write_armed_ && evbuffer_get_length(output_) == 0) {
      if (wire_length() == 0 && !close_pending_) {
        dispatcher_.Cancel(*this);
      }
      ReturnBuffer(output_);
      output_ = nullptr;
    }
  }

  bool handshaking() const { return tls_ != nullptr && !tls_->established(); }
  size_t wire_length() const { return tls_ != nullptr ? evbuffer_get_length(tls_->wire()) : 0; }

  // What recv() brought on a TLS connection: handshake steps, then plaintext for the owner.
  void ReceiveTls(absl::string_view ciphertext) {
    bool was_handshaking = handshaking();
    size_t had = input_length();
    TlsStream::Result result = tls_->Receive(ciphertext, input());
    if (result == TlsStream::Result::kFailed) {
      SendOnce(tls_->wire());  // the alert that says why, if OpenSSL wrote one
      Close(was_handshaking);
      return;
    }
    if (wire_length() > 0) {
      dispatcher_.Schedule(*this);  // OpenSSL's answer: handshake messages, tickets
    }
    if (input_ != nullptr && !watching_input_ && input_length() == 0) {
      ReturnBuffer(input_);  // handshake records only: an idle connection holds no buffer
      input_ = nullptr;
    }
    if (result == TlsStream::Result::kPeerClosed) {
      peer_close_notify_ = true;
      if (input_length() == had) {
        Close(was_handshaking);
        return;
      }
      // close_notify came with data: the data first, then the close, from the loop (a peer
      // that waits for our close_notify sends no FIN).
      close_pending_ = true;
      dispatcher_.Schedule(*this);
    }
    if (was_handshaking && !handshaking()) {
      if (output_length() > 0) {
        dispatcher_.Schedule(*this);
      }
      if (tls_->client()) {
        // An upstream's session is up and its certificate verified: connected. (Should the
        // server have sent data already, the owner sees it with the next bytes.)
        UpdateReading();
        callbacks_->OnTransportConnected();  // last: the owner may destroy us
        return;
      }
    }
    UpdateReading();
    if (input_length() > had) {
      callbacks_->OnTransportReadable();  // last: the owner may destroy us
    }
  }

  void Read() {
    // recv() into one area: the kernel's shortest read path (readv() goes through the VFS and
    // imports an iovec array: perf showed 2.16 us of reading a request against HAProxy's 1.36).
    // Ciphertext goes to OpenSSL, not into a chain: a TLS read takes two full records at once.
    thread_local char landing[kTlsReadSize];
    ssize_t n = recv(fd_, landing, tls_ != nullptr ? kTlsReadSize : kReadSize, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return;
      }
      Close(handshaking());
      return;
    }
    if (n == 0) {
      Close(handshaking());
      return;
    }
    if (tls_ != nullptr) {
      ReceiveTls(absl::string_view(landing, static_cast<size_t>(n)));
      return;
    }
    // Out of memory (no buffer, or no room in it): this connection closes, not the process.
    evbuffer* in = input();
    if (in == nullptr || evbuffer_add(in, landing, static_cast<size_t>(n)) != 0) {
      Close(false);
      return;
    }
    UpdateReading();
    callbacks_->OnTransportReadable();  // last: the owner may destroy us
  }

  void Write() {
    if (closed_ || silenced_) {
      return;
    }
    evbuffer* out = output_;
    bool owner_bytes = output_ != nullptr && evbuffer_get_length(output_) > 0;
    if (tls_ != nullptr) {
      // Plaintext waits in the output while the handshake runs; the wire carries ciphertext.
      owner_bytes = owner_bytes && !handshaking();
      if (owner_bytes && !tls_->Send(output_)) {
        SendOnce(tls_->wire());
        Close(false);
        return;
      }
      out = tls_->wire();
    }
    owner_output_in_flight_ = owner_output_in_flight_ || owner_bytes;
    // The length is read once and kept up to date here: nothing else adds to the buffer while
    // this runs.
    size_t remaining = out != nullptr ? evbuffer_get_length(out) : 0;
    if (remaining == 0) {
      ReleaseOutputIfEmpty();  // asked for, nothing added: nothing was written, nothing drained
      return;
    }
    while (remaining > 0) {
      evbuffer_iovec pieces[kMaxWriteVectors];
      int count = evbuffer_peek(out, -1, nullptr, pieces, kMaxWriteVectors);
      count = std::min(count, kMaxWriteVectors);
      iovec vectors[kMaxWriteVectors];
      size_t offered = 0;
      for (int i = 0; i < count; ++i) {
        vectors[i] = {pieces[i].iov_base, pieces[i].iov_len};
        offered += pieces[i].iov_len;
      }
      // One piece (a whole response, as a rule) goes through send(): a shorter path through
      // the kernel than writev's.
      ssize_t n = count == 1 ? send(fd_, vectors[0].iov_base, vectors[0].iov_len, MSG_NOSIGNAL)
                             : writev(fd_, vectors, count);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          break;
        }
        Close(handshaking());
        return;
      }
      evbuffer_drain(out, static_cast<size_t>(n));
      remaining -= static_cast<size_t>(n);
      if (static_cast<size_t>(n) < offered) {
        break;  // the kernel's buffer is full: wait until it is writable
      }
    }
    bool pending = remaining > 0;
    if (pending && !write_armed_) {
      ArmWriteEvent();
    } else if (!pending && write_armed_) {
      DisarmWriteEvent();
    }
    if (!pending) {
      ReleaseOutputIfEmpty();
      // Only the owner's bytes are reported drained: not handshake records alone, nor while
      // plaintext waits for the handshake.
      if (owner_output_in_flight_ && output_length() == 0) {
        owner_output_in_flight_ = false;
        callbacks_->OnTransportDrained();  // last: the owner may destroy us
      }
    }
  }

  // One send() of what `wire` holds, for a transport about to close.
  void SendOnce(evbuffer* wire) {
    size_t length = evbuffer_get_length(wire);
    if (length > 0) {
      send(fd_, evbuffer_pullup(wire, static_cast<ev_ssize_t>(length)), length,
           MSG_NOSIGNAL | MSG_DONTWAIT);
    }
  }

  void FinishConnect() {
    int error = 0;
    socklen_t length = sizeof(error);
    if (failed_ || getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      connecting_ = false;
      Close(true);
      return;
    }
    connecting_ = false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    DisarmWriteEvent();
    want_reading_ = true;
    UpdateReading();
    if (tls_ != nullptr) {
      // Connected once the handshake is done (ReceiveTls); the ClientHello goes out now.
      if (tls_->StartHandshake() == TlsStream::Result::kFailed) {
        Close(true);
        return;
      }
      dispatcher_.Schedule(*this);
      return;
    }
    if (output_length() > 0) {
      dispatcher_.Schedule(*this);
    }
    callbacks_->OnTransportConnected();  // last: the owner may destroy us
  }

  void Close(bool connect_failed) {
    closed_ = true;
    event_del(read_event_);
    DisarmWriteEvent();
    dispatcher_.Cancel(*this);
    reading_ = false;
    callbacks_->OnTransportClosed(connect_failed);  // last: the owner may destroy us
  }

  // Pointers first and the descriptor with the flags: every idle client connection holds one
  // transport, and this order keeps it in malloc's 128-byte class.
  event::Dispatcher& dispatcher_;
  TransportCallbacks* callbacks_;
  std::unique_ptr<TlsStream> tls_;  // TLS connections only
  evbuffer* input_ = nullptr;       // taken from the spares when bytes arrive
  evbuffer* output_ = nullptr;      // taken from the spares when the owner writes
  ::event* read_event_ = nullptr;
  ::event* write_event_ = nullptr;
  size_t read_limit_ = 0;
  int fd_;
  bool connecting_;
  bool failed_ = false;
  bool closed_ = false;
  bool silenced_ = false;
  bool want_reading_ = true;
  bool reading_ = false;
  bool watching_input_ = false;
  bool write_armed_ = false;
  bool owner_output_in_flight_ = false;  // the owner's bytes were sent or wait for room
  bool close_pending_ = false;           // the peer's close_notify, reported after its data
  bool aborted_ = false;                 // Abort(): no close_notify
  bool peer_close_notify_ = false;       // the peer's close_notify arrived
};

// glibc's chunks: 120 bytes of object in a 128-byte chunk (see the member order).
static_assert(sizeof(SocketTransport) <= 120);

std::unique_ptr<SocketTransport> ConnectSocket(event::Dispatcher& dispatcher,
                                               const sockaddr* address, socklen_t length,
                                               TransportCallbacks& callbacks,
                                               std::unique_ptr<TlsStream> tls) {
  // Without a descriptor (EMFILE) the transport still reports the failure from the loop.
  int fd = socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto transport = std::make_unique<SocketTransport>(dispatcher, fd, /*connecting=*/true, callbacks,
                                                     std::move(tls));
  if (fd < 0 || (connect(fd, address, length) != 0 && errno != EINPROGRESS)) {
    transport->FailSoon();
  }
  return transport;
}

}  // namespace

std::unique_ptr<Transport> Transport::Accepted(event::Dispatcher& dispatcher, int fd,
                                               TransportCallbacks& callbacks) {
  return std::make_unique<SocketTransport>(dispatcher, fd, /*connecting=*/false, callbacks);
}

std::unique_ptr<Transport> Transport::AcceptedTls(event::Dispatcher& dispatcher, int fd,
                                                  ssl_st* session, TransportCallbacks& callbacks) {
  auto tls =
      session != nullptr ? std::make_unique<TlsStream>(session, TlsStream::Role::kServer) : nullptr;
  if (tls == nullptr || !tls->usable()) {
    // No session (out of memory): the connection closes; it is never served in the clear.
    // (The socket is closed only once nothing can throw: until then it is the caller's.)
    auto transport =
        std::make_unique<SocketTransport>(dispatcher, -1, /*connecting=*/true, callbacks);
    close(fd);
    transport->FailSoon();
    return transport;
  }
  return std::make_unique<SocketTransport>(dispatcher, fd, /*connecting=*/false, callbacks,
                                           std::move(tls));
}

std::unique_ptr<Transport> Transport::Connect(event::Dispatcher& dispatcher,
                                              const sockaddr* address, socklen_t length,
                                              TransportCallbacks& callbacks) {
  return ConnectSocket(dispatcher, address, length, callbacks, nullptr);
}

std::unique_ptr<Transport> Transport::ConnectTls(event::Dispatcher& dispatcher,
                                                 const sockaddr* address, socklen_t length,
                                                 ssl_st* session, TransportCallbacks& callbacks) {
  auto tls =
      session != nullptr ? std::make_unique<TlsStream>(session, TlsStream::Role::kClient) : nullptr;
  if (tls == nullptr || !tls->usable()) {
    // No session (out of memory): a failed connect, never a request in the clear.
    auto transport =
        std::make_unique<SocketTransport>(dispatcher, -1, /*connecting=*/true, callbacks);
    transport->FailSoon();
    return transport;
  }
  return ConnectSocket(dispatcher, address, length, callbacks, std::move(tls));
}

}  // namespace confgate::network
