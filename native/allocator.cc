// A caching allocator for libtorch's CPU tensors.
//
// Training and captioning allocate the same large tensors (activations, image batches, gates) step
// after step. glibc returns such blocks to the system on free and maps fresh pages on the next
// allocation, and every first touch of a page is a page fault: on virtual machines a fault costs
// tens of microseconds, so filling a 38 MB image batch took 230 ms instead of 20. This allocator
// keeps freed blocks of 64 KiB and more and hands them out again for later requests (the smallest
// cached block that fits and is at most twice the size), as PyTorch's CUDA caching allocator does
// for GPU memory. Smaller blocks go to malloc.
//
// Blocks of 2 MiB and more are mapped by the allocator itself (mmap), each on its own, and unmapped
// when the cache lets them go, so that trimming the cache gives their memory back to the system.
// (From glibc they came out of the heap, where torchcap's raised mmap threshold puts blocks up to
// 32 MiB (runtime.cc): a freed block below the heap's top stayed in the process, and memory the heap
// had used before was already faulted in 4 KiB pages.) They are aligned to 2 MiB and advised to use
// transparent huge pages (madvise MADV_HUGEPAGE, which Debian's default THP mode "madvise" honours):
// one fault maps 2 MiB instead of 4 KiB, which is what filling a checkpoint's weights mostly costs on
// a virtual machine (Captioner.load of ResNet-152: 2.82 -> 2.42 s, bench/cold-start.js). Blocks from
// 64 KiB up to 2 MiB are carved one after another from 2 MiB huge-page chunks, mapped the same way (a
// ResNet-152 keeps 85 of its 241 MB in such weights, 71 of them of 1 MiB); a chunk goes back to the
// system when every block carved from it is free and the cache is trimmed.
//
// Huge pages are the default, except on a virtual machine whose balloon reports free memory to the
// host (virtio-balloon's free page reporting, read from sysfs): the host takes back free blocks of
// 2 MiB and more, so a huge page there is mostly memory the host must back again at its first touch,
// and 4 KiB pages, which mostly come from the guest's own recently freed memory, were faster on the
// two such machines measured (Captioner.load 0.62 s against 0.90 s, bench/cold-start.js; the
// ResNet-152 training step no slower, a step on cached features 1-2% slower). TORCHCAP_HUGE_PAGES=1
// uses them anyway; TORCHCAP_HUGE_PAGES=0 keeps 4 KiB pages everywhere. Without huge pages nothing
// is carved (blocks of 2 MiB and more are still mapped on their own).
//
// At most TORCHCAP_CPU_CACHE_MB megabytes (default 2048) sit unused in the cache; beyond that the
// largest free blocks go back to the system (a carved block with its whole chunk only, so free
// blocks of chunks still in use stay cached past the limit). TORCHCAP_CPU_CACHE_MB=0 installs nothing.
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <dirent.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common.h"

namespace torchcap {

namespace {

constexpr size_t kMinCached = 64 << 10;

constexpr size_t kHugePage = 2u << 20;

// Whether a virtio balloon device bound to its driver negotiated free page reporting
// (VIRTIO_BALLOON_F_REPORTING, feature bit 5; sysfs lists a device's features as one character per
// bit, bit 0 first).
bool BalloonReportsFreePages() {
  const char* dir = "/sys/bus/virtio/drivers/virtio_balloon";
  DIR* d = opendir(dir);
  if (!d) return false;
  bool reports = false;
  while (dirent* e = readdir(d)) {
    if (std::strncmp(e->d_name, "virtio", 6) != 0) continue;
    std::ifstream f(std::string(dir) + "/" + e->d_name + "/features");
    std::string bits;
    if (f >> bits && bits.size() > 5 && bits[5] == '1') reports = true;
  }
  closedir(d);
  return reports;
}

struct HugePagePolicy {
  bool on;
  const char* why;
};

HugePagePolicy ChooseHugePages() {
  const char* env = std::getenv("TORCHCAP_HUGE_PAGES");
  if (env && std::strcmp(env, "0") == 0) return {false, "TORCHCAP_HUGE_PAGES=0"};
  if (env && std::strcmp(env, "1") == 0) return {true, "TORCHCAP_HUGE_PAGES=1"};
  if (BalloonReportsFreePages()) return {false, "this virtual machine's balloon reports free memory to its host (TORCHCAP_HUGE_PAGES=1 uses them anyway)"};
  return {true, "the default"};
}

const HugePagePolicy& HugePages() {
  static const HugePagePolicy policy = ChooseHugePages();
  return policy;
}

// `size` bytes (a multiple of 4 KiB) of fresh memory mapped for this block alone, 2 MiB-aligned and
// advised to use huge pages when `huge`; nullptr (and mmap's error in `err`) when the system has none.
// Freed with UnmapBlock.
void* MapBlock(size_t size, bool huge, int* err) {
  const size_t slack = huge ? kHugePage : 0;  // room to align the block's start to 2 MiB
  void* m = mmap(nullptr, size + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    *err = errno;
    return nullptr;
  }
  char* start = static_cast<char*>(m);
  char* end = start + size + slack;
  char* p = huge ? reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(start) + kHugePage - 1) / kHugePage * kHugePage) : start;
  if (p > start) munmap(start, p - start);             // the unaligned head
  if (end > p + size) munmap(p + size, end - (p + size));  // and tail
#ifdef MADV_HUGEPAGE
  if (huge) madvise(p, size / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
  return p;
}

void UnmapBlock(void* p, size_t size) { munmap(p, size); }

// A block of `size` bytes: from 2 MiB on, mapped on its own (MapBlock; freed with FreeBlock, which
// tells the two kinds apart by size); below, from malloc (c10::alloc_cpu). Throws c10::Error when out
// of memory, as c10::alloc_cpu does.
void* AllocBlock(size_t size, bool huge) {
  if (size < kHugePage) return c10::alloc_cpu(size);
  int err = 0;
  void* p = MapBlock(size, huge, &err);
  TORCH_CHECK(p, "CPU allocator: can't allocate memory: you tried to allocate ", size, " bytes. Error code ", err, " (", std::strerror(err), ")");
  return p;
}

void FreeBlock(void* p, size_t size) {
  if (size < kHugePage) c10::free_cpu(p);
  else UnmapBlock(p, size);
}

size_t RoundSize(size_t n) {
  // 64 KiB steps up to 8 MiB, then 1 MiB steps: little waste, and repeated shapes hit exactly.
  const size_t step = n <= (8u << 20) ? (64u << 10) : (1u << 20);
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator(size_t limit, bool huge) : limit_(limit), huge_(huge) {}

  // libtorch 1.x declares allocate const and 2.x does not: both are defined here, and each
  // libtorch's virtual call reaches the one it declares.
  c10::DataPtr allocate(size_t n) const { return Allocate(n); }
  c10::DataPtr allocate(size_t n) { return Allocate(n); }

  // One deleter for every block, as raw_allocate/raw_deallocate (used by oneDNN) require.
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

  // libtorch 2.x asks allocators to copy too (not virtual in 1.x; there it is just a method).
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

 private:
  c10::DataPtr Allocate(size_t n) const {
    if (n < kMinCached) {
      void* p = c10::alloc_cpu(n);
      return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
    }
    size_t size = RoundSize(n);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest cached block that fits, if it is at most twice the request: layers of a
      // network shrink as they go deeper, and a block freed by one stage serves the next one
      // instead of the cache growing by every size ever seen.
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= 2 * size) {
        p = it->second;
        size = it->first;
        free_.erase(it);
        cached_ -= size;
        hits_++;
        auto c = carved_.find(p);
        if (c != carved_.end()) c->second->free_blocks--;
      } else if (huge_ && size < kHugePage) {
        p = CarveLocked(size);
      }
    }
    if (!p) {
      try {
        p = AllocBlock(size, huge_);
      } catch (const c10::Error&) {
        Trim(0);  // out of memory: give the cache back and try once more
        p = AllocBlock(size, huge_);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[p] = size;
      live_ += size;
    }
    return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
  }

 public:
  void Release(void* p) const {
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = sizes_.find(p);
    if (it == sizes_.end()) {  // a small block: straight back to malloc
      lock.unlock();
      c10::free_cpu(p);
      return;
    }
    const size_t size = it->second;
    sizes_.erase(it);
    live_ -= size;
    AddFreeLocked(p, size);
    TrimLocked(limit_);
  }

  // Frees cached blocks, largest first, until at most `keep` bytes stay cached.
  void Trim(size_t keep) const {
    std::lock_guard<std::mutex> lock(mutex_);
    TrimLocked(keep);
  }

  struct Stats {
    size_t cached, live, hits, chunks;
  };
  Stats GetStats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_, live_, hits_, chunks_.size()};
  }

 private:
  // A 2 MiB huge-page chunk that blocks under 2 MiB are carved from, front to back.
  struct Chunk {
    char* base;
    size_t used = 0;         // bytes carved so far
    size_t blocks = 0;       // blocks carved from it
    size_t free_blocks = 0;  // of those, how many sit in free_
  };

  void AddFreeLocked(void* p, size_t size) const {
    free_.emplace(size, p);
    cached_ += size;
    auto c = carved_.find(p);
    if (c != carved_.end()) c->second->free_blocks++;
  }

  // A block of `size` (< 2 MiB) from the open chunk, or from a new one; nullptr if the system has
  // no chunk to give (the caller then asks malloc, as for any block). The rest of a chunk too small
  // for the request becomes a free block of its own if it is worth caching.
  void* CarveLocked(size_t size) const {
    if (!open_ || open_->used + size > kHugePage) {
      int err = 0;
      void* base = MapBlock(kHugePage, true, &err);
      if (!base) return nullptr;
      if (open_ && kHugePage - open_->used >= kMinCached) {
        void* rest = open_->base + open_->used;
        const size_t rest_size = kHugePage - open_->used;
        carved_[rest] = open_;
        open_->blocks++;
        open_->used = kHugePage;
        AddFreeLocked(rest, rest_size);
      }
      auto chunk = std::make_unique<Chunk>();
      chunk->base = static_cast<char*>(base);
      open_ = chunk.get();
      chunks_.emplace(base, std::move(chunk));
    }
    void* p = open_->base + open_->used;
    open_->used += size;
    open_->blocks++;
    carved_[p] = open_;
    return p;
  }

  void TrimLocked(size_t keep) const {
    if (cached_ <= keep) return;
    // Largest first; a carved block goes back only with its whole chunk, once all of the chunk's
    // blocks are free.
    for (auto it = free_.end(); it != free_.begin() && cached_ > keep;) {
      --it;
      auto c = carved_.find(it->second);
      if (c == carved_.end()) {
        cached_ -= it->first;
        FreeBlock(it->second, it->first);
        it = free_.erase(it);
        continue;
      }
      Chunk* chunk = c->second;
      if (chunk->free_blocks != chunk->blocks) continue;
      ReleaseChunkLocked(chunk);
      it = free_.end();  // the chunk's blocks left free_: start again from the largest
    }
  }

  void ReleaseChunkLocked(Chunk* chunk) const {
    for (auto it = free_.begin(); it != free_.end();) {
      auto c = carved_.find(it->second);
      if (c != carved_.end() && c->second == chunk) {
        cached_ -= it->first;
        carved_.erase(c);
        it = free_.erase(it);
      } else {
        ++it;
      }
    }
    if (open_ == chunk) open_ = nullptr;
    void* base = chunk->base;
    chunks_.erase(base);
    UnmapBlock(base, kHugePage);
  }

  static void Free(void* p);

  const size_t limit_;
  const bool huge_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, size_t> sizes_;  // blocks handed out, by address
  mutable std::multimap<size_t, void*> free_;         // blocks kept for reuse, by size
  mutable std::unordered_map<void*, Chunk*> carved_;  // blocks carved from a chunk, handed out or free
  mutable std::unordered_map<void*, std::unique_ptr<Chunk>> chunks_;  // by base address
  mutable Chunk* open_ = nullptr;                     // the chunk new blocks are carved from
  mutable size_t cached_ = 0, live_ = 0, hits_ = 0;
};

CachingCpuAllocator* g_allocator = nullptr;

void CachingCpuAllocator::Free(void* p) { g_allocator->Release(p); }

// Installed once per process, before the first tensor of this addon; never destroyed (tensors may
// outlive every environment).
CachingCpuAllocator* Install() {
  const char* env = std::getenv("TORCHCAP_CPU_CACHE_MB");
  const long mb = env ? std::strtol(env, nullptr, 10) : 2048;
  if (mb <= 0) return nullptr;
  auto* a = new CachingCpuAllocator(static_cast<size_t>(mb) << 20, HugePages().on);
  g_allocator = a;
  c10::SetCPUAllocator(a, /*priority=*/100);
  return a;
}

}  // namespace

bool CpuCacheInstalled() {
  static CachingCpuAllocator* a = Install();
  return a != nullptr;
}

// cpuCache() -> { installed, cachedBytes, liveBytes, hits, hugeChunks, hugePages, hugePagesWhy }
static Napi::Value CpuCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("installed", CpuCacheInstalled());
  if (g_allocator) {
    auto s = g_allocator->GetStats();
    o.Set("cachedBytes", static_cast<double>(s.cached));
    o.Set("liveBytes", static_cast<double>(s.live));
    o.Set("hits", static_cast<double>(s.hits));
    o.Set("hugeChunks", static_cast<double>(s.chunks));
    o.Set("hugePages", HugePages().on);
    o.Set("hugePagesWhy", HugePages().why);
  }
  return o;
}

// emptyCpuCache(): returns every cached block to the system.
static Napi::Value EmptyCpuCache(const Napi::CallbackInfo& info) {
  if (g_allocator) g_allocator->Trim(0);
  return info.Env().Undefined();
}

void InitAllocator(Napi::Env env, Napi::Object exports) {
  CpuCacheInstalled();
  exports.Set("cpuCache", Napi::Function::New<CpuCache>(env, "cpuCache"));
  exports.Set("emptyCpuCache", Napi::Function::New<EmptyCpuCache>(env, "emptyCpuCache"));
}

}  // namespace torchcap
