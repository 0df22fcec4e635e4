#pragma once
// The undo half of a multi-step operation: each step that succeeded pushes its inverse; if the
// operation is not committed, the inverses run newest first when the stack goes out of scope.
#include <functional>
#include <utility>
#include <vector>

namespace nm {

class UndoStack {
  public:
    UndoStack() = default;
    UndoStack(const UndoStack&) = delete;
    UndoStack& operator=(const UndoStack&) = delete;
    ~UndoStack() {
        for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
    }
    void push(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
    // The operation is complete: keep everything.
    void commit() { steps_.clear(); }

  private:
    std::vector<std::function<void()>> steps_;
};

}  // namespace nm
