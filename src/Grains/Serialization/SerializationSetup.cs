using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Cloning;
using Orleans.Serialization.Serializers;

namespace ControlPlane.Grains.Serialization;

/// <summary>Registers <see cref="ProtobufMessageCodec"/> with an Orleans serializer.</summary>
public static class SerializationSetup
{
    public static ISerializerBuilder AddProtobufMessages(this ISerializerBuilder builder)
    {
        var services = builder.Services;
        services.AddSingleton<ProtobufMessageCodec>();
        services.AddSingleton<IGeneralizedCodec>(s => s.GetRequiredService<ProtobufMessageCodec>());
        services.AddSingleton<IGeneralizedCopier>(s => s.GetRequiredService<ProtobufMessageCodec>());
        services.AddSingleton<ITypeFilter>(s => s.GetRequiredService<ProtobufMessageCodec>());
        builder.Configure(options =>
        {
            options.WellKnownTypeAliases[ProtobufMessageCodec.WellKnownAlias] = typeof(ProtobufMessageCodec);
            // A number instead of the alias in every message header ("CPB1").
            options.WellKnownTypeIds[0x43504231] = typeof(ProtobufMessageCodec);
        });
        return builder;
    }
}
