// The failure policy under mpirun: rank 1 fails while rank 0 waits in a collective that rank 1
// never joins. abort_all() must end the whole job, non-zero, naming the failed rank; without it
// rank 0 would wait forever. Run by tests/dist/expect_abort.sh (ctest dist.abort_np2).
#include <iostream>

#include "parallel/runtime.h"
#include "common/error.h"

int main(int argc, char** argv) {
  auto& rt = distillery::parallel::Runtime::init(&argc, &argv);
  try {
    if (rt.world_rank == 1) throw distillery::UserError("abort_probe: failure raised on purpose");
    torch::Tensor t = torch::ones({4});
    rt.world->allreduce(t);
    rt.world->barrier();
  } catch (const std::exception& e) {
    std::cerr << rt.rank_tag() << "error: " << e.what() << std::endl;
    rt.abort_all(2);
  }
  rt.finalize();
  return 0;
}
