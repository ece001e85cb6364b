// Reading JS arguments and option fields in native code. Every reader names the argument in its
// TypeError / RangeError, so a wrong call from anywhere reads as what it is, never as a crash.
// (lib/ validates first and gives the friendlier messages; these are the native layer's own checks.)
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torchcap {

double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<int64_t> ArgInts(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<double> ArgNumbers(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* name);
// Whether argument i is given (neither missing, undefined nor null).
bool ArgPresent(const Napi::CallbackInfo& info, size_t i);

std::vector<int64_t> ToInts(Napi::Value v, const char* name);
std::vector<double> ToNumbers(Napi::Value v, const char* name);
int64_t ToInt(Napi::Value v, const char* name);

// Fields of an options object; absent (undefined/null) fields give the default.
int64_t OptInt(Napi::Object o, const char* key, int64_t def);
double OptNumber(Napi::Object o, const char* key, double def);
bool OptBool(Napi::Object o, const char* key, bool def);
std::string OptString(Napi::Object o, const char* key, const std::string& def);
// The options object at argument i, or an empty one when absent.
Napi::Object ArgOptions(const Napi::CallbackInfo& info, size_t i);

}  // namespace torchcap
