// What the SPMD runtime needs of a device's communicator beyond the public interface, whatever the
// backend: a deadline and a wait observer it can set per launch, and the in-process group whose
// abort() stops every wait of this process's members.
#pragma once

#include <chrono>

#include "datarax/communicator.h"

namespace datarax::detail {

class ThreadsGroup;
class WaitObserver;

class GroupCommunicator : public Communicator {
 public:
  virtual void set_timeout(std::chrono::milliseconds timeout) = 0;
  virtual void set_observer(WaitObserver* observer) = 0;
  // The group of this process's members (all members, for the threads backend).
  virtual ThreadsGroup& local_group() const = 0;
};

}  // namespace datarax::detail
