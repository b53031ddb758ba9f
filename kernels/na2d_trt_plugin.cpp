// tsjnet-sdk: the compiled TensorRT plugin tsjnet::NeighborhoodAttention2D (IPluginV3, TensorRT >= 10.0).
//
// One plugin for both forms of the ONNX node (tsjnet_sdk/na_node.py): inputs q, k, v [B, H, W, heads, D]
// and an optional 4th input rpb [heads, 2k-1, 2k-1]; attributes kernel_size (int), dilation (int),
// scale (float); one output, q's shape and dtype. fp32, or fp16 q/k/v/out with an fp16 or fp32 rpb;
// linear (contiguous) tensors; every dimension may be dynamic. enqueue launches the same na2d_core.cuh
// kernels as the PyTorch binding (na2d_trt_launch.cu).
//
// Found by TensorRT's ONNX parser (FallbackPluginImporter) by op type = "NeighborhoodAttention2D",
// version "1" (the parser's default) and namespace = the node's `plugin_namespace` attribute ("tsjnet";
// TensorRT 10.3's parser does not read the node domain). The parser passes the node's attributes as
// plugin fields (ONNX INT -> kINT32, FLOAT -> kFLOAT32).
//
// Library entry points (TensorRT 10's plugin-library convention, as in NVIDIA's libnvinfer_vc_plugin):
//   extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
//   extern "C" void setLoggerFinder(ILoggerFinder* finder);
// used by IPluginRegistry::loadLibrary, i.e. Python trt.get_plugin_registry().load_library(path) and
// `trtexec --dynamicPlugins=path`. The library does not register itself when dlopen'ed, so it needs no
// libnvinfer at link time and load_library never meets an already-registered creator
// (`trtexec --staticPlugins` expects self-registration and is therefore not supported).
//
// Built by kernels/build_plugin.py (`tsjnet build-plugin`).

#include "na2d_trt_launch.h"

#include <NvInferRuntime.h>

#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#if defined(_WIN32)
#define TSJNET_EXPORT __declspec(dllexport)
#else
#define TSJNET_EXPORT __attribute__((visibility("default")))
#endif

namespace tsjnet {
namespace {

using namespace nvinfer1;

constexpr char const* kName = "NeighborhoodAttention2D";   // = na_node.OP_TYPE
constexpr char const* kVersion = "1";                      // the ONNX parser's default plugin_version
constexpr char const* kNamespace = "tsjnet";               // = na_node.DOMAIN
constexpr int32_t kRank = 5;                               // [B, H, W, heads, head_dim]

// ------------------------------------------------------------------------------------------------
// Logging through TensorRT's logger when the library was given one (setLoggerFinder), else stderr.
// ------------------------------------------------------------------------------------------------
ILoggerFinder* gLoggerFinder = nullptr;

void log(ILogger::Severity severity, char const* format, ...) {
    char message[512];
    int const prefix = std::snprintf(message, sizeof message, "tsjnet::%s plugin: ", kName);
    va_list args;
    va_start(args, format);
    std::vsnprintf(message + prefix, sizeof message - prefix, format, args);
    va_end(args);
    ILogger* logger = gLoggerFinder != nullptr ? gLoggerFinder->findLogger() : nullptr;
    if (logger != nullptr) {
        logger->log(severity, message);
    } else if (severity <= ILogger::Severity::kWARNING) {
        std::fprintf(stderr, "%s\n", message);
    }
}

#define TSJNET_FAIL(...) (log(ILogger::Severity::kERROR, __VA_ARGS__), -1)

// ------------------------------------------------------------------------------------------------
// Attributes
// ------------------------------------------------------------------------------------------------
struct Attributes {
    int32_t kernel_size = 0;
    int32_t dilation = 1;
    float scale = 0.0f;  // 0: not given -> head_dim^-0.5 at run time (the op's default)
};

bool read_int(PluginField const& f, int32_t& out) {
    if (f.data == nullptr || f.length < 1) return false;
    switch (f.type) {
    case PluginFieldType::kINT32: out = *static_cast<int32_t const*>(f.data); return true;
    case PluginFieldType::kINT64: {
        int64_t const v = *static_cast<int64_t const*>(f.data);
        if (v < INT32_MIN || v > INT32_MAX) return false;
        out = static_cast<int32_t>(v);
        return true;
    }
    case PluginFieldType::kINT16: out = *static_cast<int16_t const*>(f.data); return true;
    case PluginFieldType::kINT8: out = *static_cast<int8_t const*>(f.data); return true;
    default: return false;
    }
}

bool read_float(PluginField const& f, float& out) {
    if (f.data == nullptr || f.length < 1) return false;
    switch (f.type) {
    case PluginFieldType::kFLOAT32: out = *static_cast<float const*>(f.data); return true;
    case PluginFieldType::kFLOAT64: out = static_cast<float>(*static_cast<double const*>(f.data)); return true;
    default: return false;
    }
}

// Parses and checks the fields; false (after logging why) on a missing or invalid one.
bool parse_attributes(PluginFieldCollection const* fc, Attributes& a) {
    bool have_kernel_size = false;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
        PluginField const& f = fc->fields[i];
        if (f.name == nullptr) continue;
        if (std::strcmp(f.name, "kernel_size") == 0) {
            if (!read_int(f, a.kernel_size)) return TSJNET_FAIL("attribute kernel_size must be an int") == 0;
            have_kernel_size = true;
        } else if (std::strcmp(f.name, "dilation") == 0) {
            if (!read_int(f, a.dilation)) return TSJNET_FAIL("attribute dilation must be an int") == 0;
        } else if (std::strcmp(f.name, "scale") == 0) {
            if (!read_float(f, a.scale)) return TSJNET_FAIL("attribute scale must be a float") == 0;
        }
    }
    if (!have_kernel_size) return TSJNET_FAIL("attribute kernel_size is missing") == 0;
    if (a.kernel_size < 1 || a.kernel_size % 2 == 0)
        return TSJNET_FAIL("kernel_size must be odd and >= 1, got %d", a.kernel_size) == 0;
    if (a.dilation < 1) return TSJNET_FAIL("dilation must be >= 1, got %d", a.dilation) == 0;
    if (!std::isfinite(a.scale) || a.scale < 0.0f)
        return TSJNET_FAIL("scale must be finite and > 0 (or absent), got %g", static_cast<double>(a.scale)) == 0;
    return true;
}

bool is_float_type(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF; }

// ------------------------------------------------------------------------------------------------
// The plugin
// ------------------------------------------------------------------------------------------------
class NaPlugin final : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime {
public:
    explicit NaPlugin(Attributes const& a) : mAttr(a) {}
    NaPlugin(NaPlugin const& other) : mAttr(other.mAttr), mNbInputs(other.mNbInputs) {}
    NaPlugin& operator=(NaPlugin const&) = delete;
    ~NaPlugin() override = default;

    // IPluginV3
    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
        switch (type) {
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }

    IPluginV3* clone() noexcept override { return new (std::nothrow) NaPlugin(*this); }

    // IPluginV3OneCore
    AsciiChar const* getPluginName() const noexcept override { return kName; }
    AsciiChar const* getPluginVersion() const noexcept override { return kVersion; }
    AsciiChar const* getPluginNamespace() const noexcept override { return kNamespace; }

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override { return 1; }

    int32_t getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                               int32_t nbInputs) const noexcept override {
        if (nbOutputs != 1 || (nbInputs != 3 && nbInputs != 4))
            return TSJNET_FAIL("takes 3 or 4 inputs and gives 1 output, got %d and %d", nbInputs, nbOutputs);
        if (!is_float_type(inputTypes[0])) return TSJNET_FAIL("q must be FP32 or FP16");
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                            int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                            IExprBuilder& /*exprBuilder*/) noexcept override {
        if (nbOutputs != 1 || (nbInputs != 3 && nbInputs != 4))
            return TSJNET_FAIL("takes 3 or 4 inputs and gives 1 output, got %d and %d", nbInputs, nbOutputs);
        if (inputs[0].nbDims != kRank)
            return TSJNET_FAIL("q must be [batch, height, width, heads, head_dim], got rank %d", inputs[0].nbDims);
        outputs[0] = inputs[0];  // out has q's shape
        return 0;
    }

    bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                   int32_t nbOutputs) noexcept override {
        if (nbOutputs != 1 || (nbInputs != 3 && nbInputs != 4) || pos < 0 || pos >= nbInputs + nbOutputs) return false;
        PluginTensorDesc const& d = inOut[pos].desc;
        if (d.format != TensorFormat::kLINEAR) return false;
        if (pos == 0) return is_float_type(d.type);
        DataType const q = inOut[0].desc.type;
        if (nbInputs == 4 && pos == 3) return d.type == q || d.type == DataType::kFLOAT;  // rpb: q's or fp32
        return d.type == q;  // k, v, out
    }

    int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
                            int32_t nbOutputs) noexcept override {
        if (nbOutputs != 1 || (nbInputs != 3 && nbInputs != 4))
            return TSJNET_FAIL("takes 3 or 4 inputs and gives 1 output, got %d and %d", nbInputs, nbOutputs);
        mNbInputs = nbInputs;
        // Build-time checks of what is already known (-1 = dynamic, checked again in onShapeChange).
        Dims const& q = in[0].desc.dims;
        if (q.nbDims != kRank) return TSJNET_FAIL("q must have rank 5, got %d", q.nbDims);
        int64_t const head_dim = q.d[4];
        int const dtype = in[0].desc.type == DataType::kHALF ? TSJNET_NA_F16 : TSJNET_NA_F32;
        if (head_dim > 0 && !tsjnet_na2d_built(dtype, mAttr.kernel_size, static_cast<int>(head_dim)))
            return TSJNET_FAIL("no kernel for %s, kernel_size %d, head_dim %lld in this library (%s)",
                               dtype == TSJNET_NA_F16 ? "fp16" : "fp32", mAttr.kernel_size,
                               static_cast<long long>(head_dim), tsjnet_na2d_status_string(TSJNET_NA_NOT_BUILT));
        (void)out;
        return 0;
    }

    size_t getWorkspaceSize(DynamicPluginTensorDesc const*, int32_t, DynamicPluginTensorDesc const*,
                            int32_t) const noexcept override {
        return 0;
    }

    // IPluginV3OneRuntime
    int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override {
        if (nbOutputs != 1 || (nbInputs != 3 && nbInputs != 4))
            return TSJNET_FAIL("takes 3 or 4 inputs and gives 1 output, got %d and %d", nbInputs, nbOutputs);
        mNbInputs = nbInputs;
        Dims const& q = in[0].dims;
        if (q.nbDims != kRank) return TSJNET_FAIL("q must have rank 5, got %d", q.nbDims);
        for (int32_t i = 1; i < 3; ++i) {
            if (!same_dims(in[i].dims, q)) return TSJNET_FAIL("k and v must have q's shape");
        }
        if (!same_dims(out[0].dims, q)) return TSJNET_FAIL("the output must have q's shape");
        for (int32_t i = 0; i < kRank; ++i) {
            if (q.d[i] < 1 || q.d[i] > INT32_MAX) return TSJNET_FAIL("dimension %d of q is %lld", i, static_cast<long long>(q.d[i]));
        }
        if (nbInputs == 4) {
            Dims const& r = in[3].dims;
            int64_t const span = 2 * static_cast<int64_t>(mAttr.kernel_size) - 1;
            if (r.nbDims != 3 || r.d[0] != q.d[3] || r.d[1] != span || r.d[2] != span)
                return TSJNET_FAIL("rpb must be [heads, 2k-1, 2k-1] = [%lld, %lld, %lld]",
                                   static_cast<long long>(q.d[3]), static_cast<long long>(span),
                                   static_cast<long long>(span));
        }
        return 0;
    }

    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                    void const* const* inputs, void* const* outputs, void* /*workspace*/,
                    cudaStream_t stream) noexcept override {
        if (mNbInputs != 3 && mNbInputs != 4) return TSJNET_FAIL("enqueue before onShapeChange/configurePlugin");
        Dims const& q = inputDesc[0].dims;
        TsjnetNaLaunch p{};
        p.dtype = inputDesc[0].type == DataType::kHALF ? TSJNET_NA_F16 : TSJNET_NA_F32;
        p.kernel_size = mAttr.kernel_size;
        p.dilation = mAttr.dilation;
        p.B = static_cast<int>(q.d[0]);
        p.H = static_cast<int>(q.d[1]);
        p.W = static_cast<int>(q.d[2]);
        p.heads = static_cast<int>(q.d[3]);
        p.head_dim = static_cast<int>(q.d[4]);
        p.scale = mAttr.scale > 0.0f ? mAttr.scale : 1.0f / std::sqrt(static_cast<float>(p.head_dim));
        p.q = inputs[0];
        p.k = inputs[1];
        p.v = inputs[2];
        p.rpb = mNbInputs == 4 ? inputs[3] : nullptr;
        p.rpb_half = mNbInputs == 4 && inputDesc[3].type == DataType::kHALF ? 1 : 0;
        p.out = outputs[0];
        int const status = tsjnet_na2d_launch(&p, stream);
        if (status != TSJNET_NA_OK) return TSJNET_FAIL("launch failed: %s", tsjnet_na2d_status_string(status));
        return 0;
    }

    IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override { return clone(); }

    PluginFieldCollection const* getFieldsToSerialize() noexcept override {
        // The attributes only; the input count is given again by configurePlugin/onShapeChange.
        mFields.clear();
        mFields.emplace_back("kernel_size", &mAttr.kernel_size, PluginFieldType::kINT32, 1);
        mFields.emplace_back("dilation", &mAttr.dilation, PluginFieldType::kINT32, 1);
        mFields.emplace_back("scale", &mAttr.scale, PluginFieldType::kFLOAT32, 1);
        mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
        mFieldCollection.fields = mFields.data();
        return &mFieldCollection;
    }

private:
    static bool same_dims(Dims const& a, Dims const& b) {
        if (a.nbDims != b.nbDims) return false;
        for (int32_t i = 0; i < a.nbDims; ++i) {
            if (a.d[i] != b.d[i]) return false;
        }
        return true;
    }

    Attributes mAttr;
    int32_t mNbInputs = -1;
    std::vector<PluginField> mFields;
    PluginFieldCollection mFieldCollection{0, nullptr};
};

// ------------------------------------------------------------------------------------------------
// The creator
// ------------------------------------------------------------------------------------------------
class NaPluginCreator final : public IPluginCreatorV3One {
public:
    NaPluginCreator() {
        mFields.emplace_back("kernel_size", nullptr, PluginFieldType::kINT32, 1);
        mFields.emplace_back("dilation", nullptr, PluginFieldType::kINT32, 1);
        mFields.emplace_back("scale", nullptr, PluginFieldType::kFLOAT32, 1);
        mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
        mFieldCollection.fields = mFields.data();
    }

    IPluginV3* createPlugin(AsciiChar const* /*name*/, PluginFieldCollection const* fc,
                            TensorRTPhase /*phase*/) noexcept override {
        Attributes a;
        if (!parse_attributes(fc, a)) return nullptr;
        return new (std::nothrow) NaPlugin(a);
    }

    PluginFieldCollection const* getFieldNames() noexcept override { return &mFieldCollection; }
    AsciiChar const* getPluginName() const noexcept override { return kName; }
    AsciiChar const* getPluginVersion() const noexcept override { return kVersion; }
    AsciiChar const* getPluginNamespace() const noexcept override { return kNamespace; }

private:
    std::vector<PluginField> mFields;
    PluginFieldCollection mFieldCollection{0, nullptr};
};

}  // namespace
}  // namespace tsjnet

extern "C" TSJNET_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
    static tsjnet::NaPluginCreator creator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    return creators;
}

extern "C" TSJNET_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    tsjnet::gLoggerFinder = finder;
}
