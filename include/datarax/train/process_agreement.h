// Processes that agree before the first step: under mpirun every process of a job must be given
// everything that decides the numbers alike — every setting, the --init file's contents, the
// data's checksums, the checkpoint a run resumes, the checkpoint folder. Each process all-gathers
// its items (name -> canonical text, a digest where the item is a file's contents) and compares
// them; on a difference every process throws the same ConfigError, naming the item and which
// processes hold which value, so that the job ends at once instead of training apart or waiting
// for a collective's deadline.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace datarax::train {

using AgreementItems = std::vector<std::pair<std::string, std::string>>;

// Collective across the job's processes (nothing to do in one process). ConfigError(name, this
// process's value, "differs between processes: process 0 has A; process 1 has B") for the first
// item, in `items`' order, where any two processes differ; `what` names the comparison in a
// collective's error. Every process must pass the same names in the same order.
void check_processes_agree(const AgreementItems& items, const std::string& what);

// A file's contents as agreement text: "<bytes> bytes, xxh3 <16 hex digits>", or "cannot read:
// <path and reason>" — a process that cannot read the file then differs from one that can, and the
// difference names it.
std::string file_digest(const std::string& path);

}  // namespace datarax::train
