using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Google.Protobuf;
using Orleans.Serialization;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Cloning;
using Orleans.Serialization.Codecs;
using Orleans.Serialization.Serializers;
using Orleans.Serialization.WireProtocol;

namespace ControlPlane.Grains.Serialization;

/// <summary>
/// Lets Orleans carry the API's protobuf messages as grain arguments and results. Between
/// silos (or to a client) a message travels as its type and its protobuf bytes. Within a silo it
/// is not copied at all: a message handed to or returned from a grain is treated as immutable by
/// convention — grains clone what they keep and what they return — so the deep copy Orleans
/// would make of every argument is skipped (measured in bench/Serialization.Bench).
/// </summary>
[Alias(WellKnownAlias)]
public sealed class ProtobufMessageCodec : IGeneralizedCodec, IGeneralizedCopier, ITypeFilter
{
    public const string WellKnownAlias = "controlplane.protobuf";

    private static readonly Type SelfType = typeof(ProtobufMessageCodec);
    private static readonly ConcurrentDictionary<Type, MessageParser?> Parsers = new();

    public bool IsSupportedType(Type type) => type == SelfType || ParserOf(type) is not null;

    public bool? IsTypeAllowed(Type type) => typeof(IMessage).IsAssignableFrom(type) ? ParserOf(type) is not null : null;

    [return: NotNullIfNotNull(nameof(input))]
    public object? DeepCopy(object? input, CopyContext context) => input;

    public void WriteField<TBufferWriter>(ref Writer<TBufferWriter> writer, uint fieldIdDelta, Type? expectedType, object? value)
        where TBufferWriter : IBufferWriter<byte>
    {
        if (ReferenceCodec.TryWriteReferenceField(ref writer, fieldIdDelta, expectedType, value))
        {
            return;
        }
        var message = (IMessage)value!;
        writer.WriteFieldHeader(fieldIdDelta, expectedType, SelfType, WireType.TagDelimited);
        ReferenceCodec.MarkValueField(writer.Session);
        writer.WriteFieldHeaderExpected(0, WireType.LengthPrefixed);
        writer.Session.TypeCodec.WriteLengthPrefixed(ref writer, value!.GetType());
        var size = message.CalculateSize();
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            message.WriteTo(buffer.AsSpan(0, size));
            ReferenceCodec.MarkValueField(writer.Session);
            writer.WriteFieldHeaderExpected(1, WireType.LengthPrefixed);
            writer.WriteVarUInt32((uint)size);
            writer.Write(buffer.AsSpan(0, size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        writer.WriteEndObject();
    }

    public object ReadValue<TInput>(ref Reader<TInput> reader, Field field)
    {
        if (field.IsReference)
        {
            return ReferenceCodec.ReadReference(ref reader, field.FieldType)!;
        }
        field.EnsureWireTypeTagDelimited();
        var placeholder = ReferenceCodec.CreateRecordPlaceholder(reader.Session);
        Type? type = null;
        object? result = null;
        uint id = 0;
        while (true)
        {
            var header = reader.ReadFieldHeader();
            if (header.IsEndBaseOrEndObject)
            {
                break;
            }
            id += header.FieldIdDelta;
            switch (id)
            {
                case 0:
                    ReferenceCodec.MarkValueField(reader.Session);
                    type = reader.Session.TypeCodec.ReadLengthPrefixed(ref reader);
                    break;
                case 1:
                    var parser = (type is null ? null : ParserOf(type)) ?? throw new RequiredFieldMissingException("a protobuf message arrived without a known type");
                    ReferenceCodec.MarkValueField(reader.Session);
                    var length = (int)reader.ReadVarUInt32();
                    var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
                    try
                    {
                        reader.ReadBytes(buffer.AsSpan(0, length));
                        result = parser.ParseFrom(buffer.AsSpan(0, length));
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                    break;
                default:
                    reader.ConsumeUnknownField(header);
                    break;
            }
        }
        ReferenceCodec.RecordObject(reader.Session, result, placeholder);
        return result ?? throw new RequiredFieldMissingException("a protobuf message arrived without its bytes");
    }

    private static MessageParser? ParserOf(Type type) => Parsers.GetOrAdd(type, static t =>
        t.IsClass && !t.IsAbstract && typeof(IMessage).IsAssignableFrom(t)
            ? t.GetProperty("Parser", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)?.GetValue(null) as MessageParser
            : null);
}
