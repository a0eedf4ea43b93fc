#include "server/http/proto_json.h"

#include <google/protobuf/descriptor.h>

#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

namespace pb = google::protobuf;

void WriteMessage(const pb::Message& m, JsonWriter* w);

// One value of `field`: element `index` of a repeated field, else the field.
void WriteValue(const pb::Message& m, const pb::FieldDescriptor* f, int index, JsonWriter* w) {
  const pb::Reflection* r = m.GetReflection();
  const bool repeated = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      w->Int(repeated ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      return;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      w->Int64(repeated ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      return;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      w->Uint(repeated ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      return;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      w->Uint64(repeated ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      return;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      w->Double(repeated ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      return;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      w->Double(repeated ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      return;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      w->Bool(repeated ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f));
      return;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* e =
          repeated ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
      WriteJsonString(w, e->name());
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      WriteJsonString(w, repeated ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                  : r->GetStringReference(m, f, &scratch));
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      WriteMessage(repeated ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), w);
      return;
  }
}

void WriteMessage(const pb::Message& m, JsonWriter* w) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  w->StartObject();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    // A oneof member, or a message field (whose presence means something,
    // e.g. a reshape), is written only when set.
    const bool has_presence = f->real_containing_oneof() != nullptr ||
                              (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
                               !f->is_repeated());
    if (has_presence && !r->HasField(m, f)) continue;
    w->Key(f->name().data(), static_cast<rapidjson::SizeType>(f->name().size()));
    if (f->is_map()) {
      // Entries are messages {key, value}: a JSON object keyed by `key`.
      w->StartObject();
      const pb::FieldDescriptor* key = f->message_type()->map_key();
      const pb::FieldDescriptor* value = f->message_type()->map_value();
      for (int e = 0; e < r->FieldSize(m, f); ++e) {
        const pb::Message& entry = r->GetRepeatedMessage(m, f, e);
        std::string scratch;
        const std::string& k = entry.GetReflection()->GetStringReference(entry, key, &scratch);
        w->Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
        WriteValue(entry, value, 0, w);
      }
      w->EndObject();
    } else if (f->is_repeated()) {
      w->StartArray();
      for (int e = 0; e < r->FieldSize(m, f); ++e) WriteValue(m, f, e, w);
      w->EndArray();
    } else {
      WriteValue(m, f, 0, w);
    }
  }
  w->EndObject();
}

}  // namespace

std::string ProtoToJson(const pb::Message& message) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteMessage(message, &w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace berth::http
