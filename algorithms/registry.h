// Every algorithm of algorithms/<name>/ registers itself with the trainer's AlgorithmRegistry
// (trainer/algorithm_registry.h) through register_<name>_algorithm(AlgorithmRegistry&), defined in
// algorithms/<name>/<name>_registration.cpp. The build collects those files (CMakeLists.txt) into
// register_algorithms(), so adding an algorithm touches only its own folder.
#pragma once

namespace distillery {

// Registers every algorithm once; later calls do nothing. The CLI calls it before it reads a
// recipe; test executables call it at start-up (tests/register_algorithms.cpp).
void register_algorithms();

}  // namespace distillery
