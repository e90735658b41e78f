// The unit-test executable registers every algorithm before any test runs, as the CLI does.
#include "algorithms/registry.h"

namespace {
const bool registered = (distillery::register_algorithms(), true);
}  // namespace
