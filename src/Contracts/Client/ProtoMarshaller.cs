using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Contracts.Client;

/// <summary>Protobuf marshallers written straight into gRPC's buffers, as generated stubs do.</summary>
internal static class ProtoMarshaller
{
    public static Marshaller<T> For<T>(MessageParser<T> parser) where T : IMessage<T> => Marshallers.Create(
        (message, context) =>
        {
            context.SetPayloadLength(message.CalculateSize());
            message.WriteTo(context.GetBufferWriter());
            context.Complete();
        },
        context => parser.ParseFrom(context.PayloadAsReadOnlySequence()));
}
