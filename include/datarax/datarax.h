// datarax: the whole public API in one include.
#pragma once

#include "datarax/array.h"
#include "datarax/device.h"
#include "datarax/dtype.h"
#include "datarax/error.h"
#include "datarax/half.h"
#include "datarax/mesh.h"
#include "datarax/named_sharding.h"
#include "datarax/partition_spec.h"
#include "datarax/runtime.h"
#include "datarax/shape.h"
#include "datarax/sharded_array.h"
#include "datarax/sharded_tree.h"
#include "datarax/tree.h"
#include "datarax/version.h"

#include "datarax/distributed/data_parallel_module.h"
#include "datarax/distributed/device_mesh_module.h"
#include "datarax/distributed/mesh_info.h"
