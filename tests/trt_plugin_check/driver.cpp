// tsjnet-sdk: exercises the compiled TensorRT plugin library the way TensorRT does, without TensorRT or a GPU.
//
//   driver LIBRARY [--fake-launch]
// dlopens LIBRARY, takes its creators from getCreators() (IPluginRegistry::loadLibrary's entry point),
// creates plugins from ONNX-parser-like fields, and calls the build and runtime interfaces. With
// --fake-launch the library was linked with fake_launch.cpp, and the driver also checks the launch that
// enqueue asks for; with the real library (nvcc build, no GPU here) it checks that enqueue fails cleanly.
// Compiled against tests/trt_plugin_check/trt_api_stub/ (CI) or real TensorRT headers (TSJNET_TRT_INCLUDE).
// Prints one line per failed check and "ok <n> checks"; exit status 1 on any failure.
#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "na2d_trt_launch.h"

using namespace nvinfer1;

namespace {

int gChecks = 0, gFailures = 0;

void check(bool ok, char const* what) {
    ++gChecks;
    if (!ok) {
        ++gFailures;
        std::printf("FAILED: %s\n", what);
    }
}

struct Logger : ILogger {
    int errors = 0;
    std::string last;
    void log(Severity severity, AsciiChar const* msg) noexcept override {
        if (severity <= Severity::kERROR) ++errors;
        last = msg;
    }
};

struct Finder : ILoggerFinder {
    Logger logger;
    ILogger* findLogger() override { return &logger; }
};

struct Builder : IExprBuilder {
#ifdef TSJNET_TEST_TRT_API_STUB_H
    IDimensionExpr const* constant(int64_t) noexcept override { return nullptr; }
#endif
};

PluginFieldCollection fields(std::vector<PluginField> const& f) {
    return PluginFieldCollection{static_cast<int32_t>(f.size()), f.data()};
}

Dims dims(std::vector<int64_t> const& v) {
    Dims d{};
    d.nbDims = static_cast<int32_t>(v.size());
    for (size_t i = 0; i < v.size(); ++i) d.d[i] = v[i];
    return d;
}

DynamicPluginTensorDesc dyn(DataType t, std::vector<int64_t> const& shape, TensorFormat f = TensorFormat::kLINEAR) {
    DynamicPluginTensorDesc d{};
    d.desc.dims = dims(shape);
    d.desc.type = t;
    d.desc.format = f;
    d.min = d.max = d.opt = d.desc.dims;
    return d;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: driver LIBRARY [--fake-launch]\n");
        return 2;
    }
    bool const fake = argc > 2 && std::strcmp(argv[2], "--fake-launch") == 0;
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        std::printf("FAILED: dlopen: %s\n", dlerror());
        return 1;
    }
    using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    auto get_creators = reinterpret_cast<GetCreators>(dlsym(lib, "getCreators"));
    auto set_finder = reinterpret_cast<SetLoggerFinder>(dlsym(lib, "setLoggerFinder"));
    check(get_creators != nullptr, "library exports getCreators");
    check(set_finder != nullptr, "library exports setLoggerFinder");
    if (get_creators == nullptr || set_finder == nullptr) return 1;
    Finder finder;
    set_finder(&finder);

    int32_t n = -1;
    IPluginCreatorInterface* const* creators = get_creators(n);
    check(n == 1 && creators != nullptr && creators[0] != nullptr, "one creator");
    if (n != 1) return 1;
    check(std::strcmp(creators[0]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0, "creator is IPluginCreatorV3One");
    auto* creator = static_cast<IPluginCreatorV3One*>(creators[0]);
    check(std::strcmp(creator->getPluginName(), "NeighborhoodAttention2D") == 0, "creator name = ONNX op type");
    check(std::strcmp(creator->getPluginVersion(), "1") == 0, "creator version 1 (the parser's default)");
    check(std::strcmp(creator->getPluginNamespace(), "tsjnet") == 0, "creator namespace tsjnet");
    PluginFieldCollection const* names = creator->getFieldNames();
    check(names != nullptr && names->nbFields == 3, "three fields");
    if (names != nullptr && names->nbFields == 3) {
        check(std::strcmp(names->fields[0].name, "kernel_size") == 0 && names->fields[0].type == PluginFieldType::kINT32, "field kernel_size int32");
        check(std::strcmp(names->fields[1].name, "dilation") == 0 && names->fields[1].type == PluginFieldType::kINT32, "field dilation int32");
        check(std::strcmp(names->fields[2].name, "scale") == 0 && names->fields[2].type == PluginFieldType::kFLOAT32, "field scale float32");
    }

    // Invalid attributes: no plugin, and an error through TensorRT's logger.
    int32_t ks = 7, dil = 2, even = 4, zero = 0;
    float scale = 0.125f, nan = std::nanf("");
    struct Bad { std::vector<PluginField> f; char const* what; };
    std::vector<Bad> bad = {
        {{{"dilation", &dil, PluginFieldType::kINT32, 1}}, "missing kernel_size rejected"},
        {{{"kernel_size", &even, PluginFieldType::kINT32, 1}}, "even kernel_size rejected"},
        {{{"kernel_size", &ks, PluginFieldType::kINT32, 1}, {"dilation", &zero, PluginFieldType::kINT32, 1}}, "dilation 0 rejected"},
        {{{"kernel_size", &ks, PluginFieldType::kINT32, 1}, {"scale", &nan, PluginFieldType::kFLOAT32, 1}}, "NaN scale rejected"},
        {{{"kernel_size", &scale, PluginFieldType::kFLOAT32, 1}}, "float kernel_size rejected"},
    };
    for (Bad const& b : bad) {
        int const before = finder.logger.errors;
        PluginFieldCollection fc = fields(b.f);
        IPluginV3* p = creator->createPlugin("na", &fc, TensorRTPhase::kBUILD);
        check(p == nullptr && finder.logger.errors > before, b.what);
        delete p;
    }

    // A valid plugin, as the ONNX parser creates it (INT -> kINT32, FLOAT -> kFLOAT32).
    std::vector<PluginField> good = {{"kernel_size", &ks, PluginFieldType::kINT32, 1},
                                     {"dilation", &dil, PluginFieldType::kINT32, 1},
                                     {"scale", &scale, PluginFieldType::kFLOAT32, 1}};
    PluginFieldCollection fc = fields(good);
    IPluginV3* plugin = creator->createPlugin("na", &fc, TensorRTPhase::kBUILD);
    check(plugin != nullptr, "createPlugin with valid fields");
    if (plugin == nullptr) return 1;
    check(std::strcmp(plugin->getInterfaceInfo().kind, "PLUGIN") == 0, "plugin is IPluginV3");
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(core && build && runtime, "core, build and runtime capabilities");
    if (!(core && build && runtime)) return 1;
    check(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0, "core kind");
    check(std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0, "build kind");
    check(std::strcmp(runtime->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0, "runtime kind");
    check(std::strcmp(core->getPluginName(), "NeighborhoodAttention2D") == 0 &&
          std::strcmp(core->getPluginNamespace(), "tsjnet") == 0 && std::strcmp(core->getPluginVersion(), "1") == 0,
          "plugin name/namespace/version match the creator");

    // Build interface.
    check(build->getNbOutputs() == 1, "one output");
    DataType out_type = DataType::kINT32;
    DataType in_f16[4] = {DataType::kHALF, DataType::kHALF, DataType::kHALF, DataType::kFLOAT};
    check(build->getOutputDataTypes(&out_type, 1, in_f16, 4) == 0 && out_type == DataType::kHALF, "output dtype = q's (fp16)");
    DataType in_i32[3] = {DataType::kINT32, DataType::kINT32, DataType::kINT32};
    check(build->getOutputDataTypes(&out_type, 1, in_i32, 3) != 0, "int32 q rejected");
    {
        DimsExprs in[4] = {};
        in[0].nbDims = 5;
        DimsExprs out[1] = {};
        Builder b;
        check(build->getOutputShapes(in, 3, nullptr, 0, out, 1, b) == 0 && out[0].nbDims == 5, "output shape = q's");
        in[0].nbDims = 4;
        check(build->getOutputShapes(in, 3, nullptr, 0, out, 1, b) != 0, "rank-4 q rejected");
        in[0].nbDims = 5;
        check(build->getOutputShapes(in, 5, nullptr, 0, out, 1, b) != 0, "5 inputs rejected");
    }
    std::vector<int64_t> const q_shape = {2, 20, 16, 4, 32};
    std::vector<int64_t> const rpb_shape = {4, 13, 13};
    auto combo_ok = [&](std::vector<DataType> types, TensorFormat fmt = TensorFormat::kLINEAR) {
        std::vector<DynamicPluginTensorDesc> d;
        int32_t const nb_in = static_cast<int32_t>(types.size()) - 1;
        for (int32_t i = 0; i <= nb_in; ++i) d.push_back(dyn(types[i], i == 3 && nb_in == 4 ? rpb_shape : q_shape, fmt));
        bool all = true;
        for (int32_t pos = 0; pos <= nb_in; ++pos) all = all && build->supportsFormatCombination(pos, d.data(), nb_in, 1);
        return all;
    };
    DataType const F = DataType::kFLOAT, H = DataType::kHALF;
    check(combo_ok({F, F, F, F}), "fp32 without rpb supported");
    check(combo_ok({H, H, H, H}), "fp16 without rpb supported");
    check(combo_ok({F, F, F, F, F}), "fp32 with rpb supported");
    check(combo_ok({H, H, H, H, H}), "fp16 with fp16 rpb supported");
    check(combo_ok({H, H, H, F, H}), "fp16 with fp32 rpb supported");
    check(!combo_ok({F, F, F, H, F}), "fp32 with fp16 rpb not supported");
    check(!combo_ok({H, F, H, H}), "mixed q/k dtypes not supported");
    check(!combo_ok({H, H, H, F}), "output dtype other than q's not supported");
    check(!combo_ok({DataType::kINT8, DataType::kINT8, DataType::kINT8, DataType::kINT8}), "int8 not supported");
    check(!combo_ok({F, F, F, F}, TensorFormat::kCHW4), "non-linear formats not supported");
    {
        std::vector<DynamicPluginTensorDesc> d = {dyn(F, {-1, -1, -1, 4, 32}), dyn(F, {-1, -1, -1, 4, 32}),
                                                  dyn(F, {-1, -1, -1, 4, 32}), dyn(F, {-1, -1, -1, 4, 32})};
        check(build->configurePlugin(d.data(), 3, d.data() + 3, 1) == 0, "configurePlugin with dynamic B/H/W");
        std::vector<DynamicPluginTensorDesc> e = {dyn(F, {1, 8, 8, 4, 24}), dyn(F, {1, 8, 8, 4, 24}),
                                                  dyn(F, {1, 8, 8, 4, 24}), dyn(F, {1, 8, 8, 4, 24})};
        check(build->configurePlugin(e.data(), 3, e.data() + 3, 1) != 0, "configurePlugin rejects head_dim 24 (not built)");
    }
    check(build->getWorkspaceSize(nullptr, 3, nullptr, 1) == 0, "no workspace");

    // Serialisation round trip: the engine stores getFieldsToSerialize(); deserialisation calls createPlugin(kRUNTIME).
    PluginFieldCollection const* ser = runtime->getFieldsToSerialize();
    check(ser != nullptr && ser->nbFields == 3, "three serialised fields");
    IPluginV3* restored = creator->createPlugin("na", ser, TensorRTPhase::kRUNTIME);
    check(restored != nullptr, "createPlugin from the serialised fields");
    IPluginV3* attached = restored ? static_cast<IPluginV3OneRuntime*>(restored->getCapabilityInterface(
                                         PluginCapabilityType::kRUNTIME))->attachToContext(nullptr) : nullptr;
    check(attached != nullptr && attached != restored, "attachToContext returns a new plugin");
    IPluginV3* cloned = plugin->clone();
    check(cloned != nullptr && cloned != plugin, "clone returns a new plugin");

    // Runtime: onShapeChange then enqueue, on the attached copy (as an execution context does).
    if (attached != nullptr) {
        auto* rt = static_cast<IPluginV3OneRuntime*>(attached->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
        auto* fields2 = rt->getFieldsToSerialize();
        bool same = fields2 && fields2->nbFields == 3;
        for (int32_t i = 0; same && i < 3; ++i) {
            same = std::memcmp(fields2->fields[i].data, ser->fields[i].data, 4) == 0 &&
                   std::strcmp(fields2->fields[i].name, ser->fields[i].name) == 0;
        }
        check(same, "serialised fields survive createPlugin(kRUNTIME) + attachToContext");
        PluginTensorDesc in[4], out[1];
        for (int i = 0; i < 3; ++i) in[i] = dyn(H, q_shape).desc;
        in[3] = dyn(F, rpb_shape).desc;
        out[0] = dyn(H, q_shape).desc;
        check(rt->onShapeChange(in, 4, out, 1) == 0, "onShapeChange with rpb");
        alignas(16) static char buf[5][64];
        void const* inputs[4] = {buf[0], buf[1], buf[2], buf[3]};
        void* outputs[1] = {buf[4]};
        int32_t const status = rt->enqueue(in, out, inputs, outputs, nullptr, nullptr);
        if (fake) {
            auto* last = static_cast<TsjnetNaLaunch*>(dlsym(lib, "tsjnet_test_last_launch"));
            auto* fail = static_cast<int*>(dlsym(lib, "tsjnet_test_launch_status"));
            check(last != nullptr && fail != nullptr, "fake launcher symbols");
            if (last != nullptr && fail != nullptr) {
                check(status == 0, "enqueue succeeds when the launch does");
                check(last->dtype == TSJNET_NA_F16 && last->kernel_size == 7 && last->head_dim == 32 &&
                      last->B == 2 && last->H == 20 && last->W == 16 && last->heads == 4 && last->dilation == 2,
                      "launch gets dtype, kernel size, head dim, B/H/W/heads, dilation");
                check(last->scale == 0.125f, "launch gets the scale attribute");
                check(last->q == buf[0] && last->k == buf[1] && last->v == buf[2] && last->rpb == buf[3] &&
                      last->out == buf[4], "launch gets the tensors in order");
                check(last->rpb_half == 0, "fp32 rpb with fp16 q: rpb_half 0");
                *fail = TSJNET_NA_NOT_BUILT;
                int const before = finder.logger.errors;
                check(rt->enqueue(in, out, inputs, outputs, nullptr, nullptr) != 0 && finder.logger.errors > before,
                      "a failed launch makes enqueue fail and log");
                *fail = TSJNET_NA_OK;
                check(rt->onShapeChange(in, 3, out, 1) == 0, "onShapeChange without rpb");
                rt->enqueue(in, out, inputs, outputs, nullptr, nullptr);
                check(last->rpb == nullptr, "3-input form launches without rpb");
            }
        } else {
            check(status != 0, "real launcher: enqueue fails cleanly without a GPU (returns an error, no crash)");
        }
        PluginTensorDesc bad_rpb[4] = {in[0], in[1], in[2], dyn(F, {4, 7, 7}).desc};
        check(rt->onShapeChange(bad_rpb, 4, out, 1) != 0, "onShapeChange rejects an rpb that is not [heads, 2k-1, 2k-1]");
        PluginTensorDesc bad_k[3] = {in[0], dyn(H, {2, 20, 8, 4, 32}).desc, in[2]};
        check(rt->onShapeChange(bad_k, 3, out, 1) != 0, "onShapeChange rejects k of another shape");
    }
    delete cloned;
    delete attached;
    delete restored;
    delete plugin;
    std::printf("%s %d checks\n", gFailures == 0 ? "ok" : "FAILED", gChecks);
    return gFailures == 0 ? 0 : 1;
}
