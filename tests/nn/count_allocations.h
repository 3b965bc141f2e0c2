// allocation_count(): how many times operator new has run in this program. Linking
// count_allocations.cc into a test replaces the global operator new/delete with counting ones, so
// a test can show that a training step allocates nothing.
#pragma once

namespace datarax::test {

long allocation_count();

}  // namespace datarax::test
