#include <gtest/gtest.h>

#include "common/etcd.h"

TEST(EtcdClient, PrefixEnd) { EXPECT_EQ(cronrun::etcd::prefix_end("/a"), "/b"); }
