#include "server/service.h"

#include "server/stream_call.h"
#include "server/unary_call.h"

namespace argserve {
namespace {

v1::ModelInfo DescribeModel(const Classifier& classifier,
                            const ServiceOptions& options,
                            const Tokenizer& tokenizer, bool with_evidence) {
  const ModelMetadata& m = classifier.metadata();
  v1::ModelInfo info;
  info.set_name(m.name);
  info.set_version(m.version);
  info.set_format(m.format);
  for (const auto& name : m.classes) info.add_classes(name);
  info.set_nonarg_class(m.nonarg_class);
  info.set_max_residues(m.max_residues);
  auto* backbone = info.mutable_backbone();
  backbone->set_architecture(m.backbone_architecture);
  backbone->set_num_layers(m.num_layers);
  backbone->set_embed_dim(m.embed_dim);
  backbone->set_attention_heads(m.attention_heads);
  backbone->set_source(m.backbone_source);
  info.set_device(classifier.device());
  info.set_long_sequence_policy(
      options.long_sequences == LongSequencePolicy::kReject     ? "reject"
      : options.long_sequences == LongSequencePolicy::kTruncate ? "truncate"
                                                                : "window");
  info.set_max_sequences_per_request(options.max_sequences_per_request);
  info.set_metadata_json(m.raw_json);
  info.set_arg_threshold(static_cast<float>(m.arg_threshold.value_or(0.0)));
  info.set_min_residues(m.min_residues);
  info.set_residues(tokenizer.residues().letters());
  if (with_evidence && m.references.has_value()) {
    auto* references = info.mutable_references();
    references->set_count(m.references->count);
    references->set_version(m.references->version);
    references->set_source(m.references->source);
    references->set_sha256(m.references->sha256);
    auto* rule = info.mutable_evidence();
    rule->set_reference_min_identity_percent(
        static_cast<float>(100.0 * m.evidence.reference_min_identity));
    rule->set_reference_min_coverage_percent(
        static_cast<float>(100.0 * m.evidence.reference_min_coverage));
    rule->set_max_evalue(m.evidence.max_evalue);
    if (m.evidence.homolog_min_arg_probability.has_value()) {
      rule->set_homolog_min_arg_probability(
          static_cast<float>(*m.evidence.homolog_min_arg_probability));
    }
    if (m.evidence.novel_min_arg_probability.has_value()) {
      rule->set_novel_min_arg_probability(
          static_cast<float>(*m.evidence.novel_min_arg_probability));
    }
  }
  info.set_server_version(ARGSERVE_VERSION);
  return info;
}

}  // namespace

ArgClassifierService::ArgClassifierService(
    ServiceOptions options, Classifier* classifier, Batcher* batcher,
    Metrics* metrics, const NearestReferenceFinder* references)
    : options_(std::move(options)),
      metrics_(metrics),
      auth_(options_.auth_token),
      preparer_(classifier->metadata(), options_, references),
      call_rule_(classifier->metadata(), references != nullptr),
      environment_{classifier->metadata(),
                   options_,
                   auth_,
                   preparer_,
                   call_rule_,
                   *batcher,
                   *metrics},
      model_info_(DescribeModel(*classifier, options_, preparer_.tokenizer(),
                                references != nullptr)) {}

grpc::ServerUnaryReactor* ArgClassifierService::Classify(
    grpc::CallbackServerContext* context, const v1::ClassifyRequest* request,
    v1::ClassifyResponse* response) {
  return StartClassify(environment_, context, request, response);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
ArgClassifierService::ClassifyStream(grpc::CallbackServerContext* context) {
  return StartClassifyStream(environment_, context);
}

grpc::ServerUnaryReactor* ArgClassifierService::GetModelInfo(
    grpc::CallbackServerContext* context,
    const v1::GetModelInfoRequest* /*request*/, v1::ModelInfo* response) {
  auto* reactor = context->DefaultReactor();
  grpc::Status status = auth_.Check(context);
  if (status.ok()) *response = model_info_;
  metrics_->OnRequest("GetModelInfo", CodeName(status.error_code()), 0, 0);
  reactor->Finish(status);
  return reactor;
}

}  // namespace argserve
