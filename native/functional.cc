// Stateless operations of the pipeline: loss, packed sequences, async backward.
#include "async.h"
#include "common.h"
#include "record.h"

namespace torchcap {

namespace F = torch::nn::functional;
namespace rnn = torch::nn::utils::rnn;

// crossEntropy(logits [N, C], targets [N] int64, { reduction?: 'mean'|'sum'|'none', ignoreIndex? })
template <bool Async>
static Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::Tensor logits = ArgTensor(info, 0, "logits");
    torch::Tensor targets = ArgTensor(info, 1, "targets");
    Napi::Object o = ArgOptions(info, 2);
    std::string red = OptString(o, "reduction", "mean");
    int64_t ignore = OptInt(o, "ignoreIndex", -100);
    F::CrossEntropyFuncOptions opts;
    opts.ignore_index(ignore);
    if (red == "mean") opts.reduction(torch::kMean);
    else if (red == "sum") opts.reduction(torch::kSum);
    else if (red == "none") opts.reduction(torch::kNone);
    else ThrowType("reduction must be 'mean', 'sum' or 'none'");
    return RunTensors<Async>(info.Env(), [logits, targets, opts]() -> Tensors { return {F::cross_entropy(logits, targets, opts)}; });
  });
}

static const Fields kPackedSequence{"data", "batchSizes", "sortedIndices", "unsortedIndices"};

// packPaddedSequence(input, lengths int64 [B] on the CPU, batchFirst, enforceSorted)
//   -> { data, batchSizes, sortedIndices | null, unsortedIndices | null }
static Napi::Value PackPadded(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    auto seq = rnn::pack_padded_sequence(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "lengths"), ArgBool(info, 2, "batchFirst"),
                                         ArgBool(info, 3, "enforceSorted"));
    return WrapRecord(info.Env(), kPackedSequence, {seq.data(), seq.batch_sizes(), seq.sorted_indices(), seq.unsorted_indices()});
  });
}

// padPackedSequence({ data, batchSizes, sortedIndices | null, unsortedIndices | null }, batchFirst, paddingValue,
//                   totalLength | null) -> { padded, lengths }
static Napi::Value PadPacked(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    Tensors parts = ArgRecord(info, 0, "packed", kPackedSequence);
    if (!parts[0].defined() || !parts[1].defined()) ThrowType("Expected a packed sequence with data and batchSizes for packed");
    const bool batchFirst = ArgBool(info, 1, "batchFirst");
    const double padding = ArgNumber(info, 2, "paddingValue");
    torch::optional<int64_t> total;
    if (ArgPresent(info, 3)) total = ArgInt(info, 3, "totalLength");
    const int64_t batch = CheckPackedSequence(parts[0], parts[1], parts[2], parts[3]);
    // The padded output: [max(totalLength, steps), batch, *data.shape[1:]] (libtorch refuses a
    // totalLength below the steps itself).
    std::vector<int64_t> shape{std::max(total.value_or(0), parts[1].size(0)), batch};
    shape.insert(shape.end(), parts[0].sizes().begin() + 1, parts[0].sizes().end());
    CheckTensorSize("padPackedSequence output", shape, parts[0].scalar_type(), parts[0].device());
    rnn::PackedSequence seq(parts[0], parts[1], parts[2], parts[3]);
    auto r = rnn::pad_packed_sequence(seq, batchFirst, padding, total);
    return WrapRecord(info.Env(), {"padded", "lengths"}, {std::get<0>(r), std::get<1>(r)});
  });
}

// backwardAsync(tensor, gradient | null): back-propagation on a worker thread.
static Napi::Value BackwardAsync(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::Tensor t = ArgTensor(info, 0, "tensor");
    torch::Tensor g = ArgPresent(info, 1) ? ArgTensor(info, 1, "gradient") : torch::Tensor();
    if (!t.requires_grad()) ThrowError("backward() on a tensor that does not require grad and has no grad_fn");
    return RunTensors<true>(info.Env(), [t, g]() -> Tensors {
      t.backward(g);
      return {};
    });
  });
}

void InitFunctional(Napi::Env env, Napi::Object exports) {
  exports.Set("crossEntropy", Napi::Function::New<CrossEntropy<false>>(env, "crossEntropy"));
  exports.Set("crossEntropyAsync", Napi::Function::New<CrossEntropy<true>>(env, "crossEntropyAsync"));
  exports.Set("packPaddedSequence", Napi::Function::New<PackPadded>(env, "packPaddedSequence"));
  exports.Set("padPackedSequence", Napi::Function::New<PadPacked>(env, "padPackedSequence"));
  exports.Set("backwardAsync", Napi::Function::New<BackwardAsync>(env, "backwardAsync"));
}

}  // namespace torchcap
