// What identifies a training run's computation, so that a checkpoint is resumed only by a run that
// computes the same thing, and every process of a job is checked to run the same configuration.
//
// must_match: name -> canonical text of everything that decides the numbers — the data (example
// counts and CRC-32s of images and labels), the model (its name: the built-in ones name their sizes), the precision, the optimizer and
// its schedule (including the decay length), clipping, the seed and the data order (batch size,
// shuffle, drop_last). Names are TrainConfig's fields ("data" for the data set). layout: what it
// ran on (mesh, devices, processes, ZeRO), which a resumed run may change.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "datarax/data/dataset.h"
#include "datarax/mesh.h"
#include "datarax/train/train_config.h"

namespace datarax::train::detail {

using Identity = std::map<std::string, std::string>;

Identity must_match(const TrainConfig& c, const std::string& model, const data::Dataset& train, const data::Dataset& test,
                    std::int64_t total_steps);
Identity layout_of(const TrainConfig& c, const Mesh& mesh);

// ConfigError naming the first entry where this run (`mine`) differs from the checkpoint's.
void check_resumable(const Identity& mine, const Identity& checkpoint);

// Under mpirun: every process must run the same configuration (but for its own device count and
// paths; the --init file by its contents); ConfigError naming the first field that differs and the
// processes' values. Collective (train/process_agreement.h).
void check_same_on_every_process(const TrainConfig& c, const std::string& model);
// ... and the same data: the data sets' example counts and CRC-32s, named "data_dir".
void check_same_data_on_every_process(const data::Dataset& train, const data::Dataset& test);

// TrainConfig::precision runs on every process's CPU (bf16 needs AVX512_BF16); ConfigError
// otherwise, on every process, naming the first that cannot. Collective across processes.
void check_precision_supported(const TrainConfig& c);

}  // namespace datarax::train::detail
