using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace ControlPlane.Grains.Tests;

public sealed class ProtobufMessageCodecTests
{
    private static readonly IServiceProvider Services = new ServiceCollection().AddSerializer(b => b.AddProtobufMessages()).BuildServiceProvider();

    [Fact]
    public void AMessage_CrossesASiloBoundary_Intact_AsItsDeclaredAndAsAnObject()
    {
        var serializer = Services.GetRequiredService<Serializer>();
        var endpoint = new Endpoint
        {
            Metadata = new ObjectMeta { Name = "web-1", Namespace = "shop", Labels = { ["app"] = "web" } },
            Spec = new EndpointSpec { Network = "blue", Node = "node-1", Ips = { "10.1.0.9" } },
            Status = new EndpointStatus { Ips = { "10.1.0.9", "fd00::9" }, Mtu = 1450 },
        };

        Assert.Equal(endpoint, serializer.Deserialize<Endpoint>(serializer.SerializeToArray(endpoint)));
        Assert.Equal(endpoint, serializer.Deserialize<object>(serializer.SerializeToArray<object>(endpoint)));
        // Two references to one message stay one message.
        var pair = serializer.Deserialize<Endpoint[]>(serializer.SerializeToArray(new[] { endpoint, endpoint }))!;
        Assert.Same(pair[0], pair[1]);
        Assert.Null(serializer.Deserialize<Endpoint?>(serializer.SerializeToArray<Endpoint?>(null)));
    }

    /// <summary>
    /// A store failure reaches the caller on another silo as the same classified error, whatever
    /// the driver threw underneath: PostgreSQL's NpgsqlException has no Orleans codec, and when it
    /// travelled inside, the call failed with CodecNotFoundException and the client saw UNKNOWN
    /// (a write that may have happened) instead of UNAVAILABLE (nothing done, retry).
    /// </summary>
    [Fact]
    public void AStoreFailure_CrossesASiloBoundary_Classified_WhateverTheDriverThrew()
    {
        var serializer = Services.GetRequiredService<Serializer>();
        var copier = Services.GetRequiredService<DeepCopier>();
        foreach (var cause in new Exception[] { new Npgsql.NpgsqlException("Failed to connect to 127.0.0.1:5432", new System.Net.Sockets.SocketException(111)), new IOException("disk") })
        {
            var failure = new Storage.Errors.ControlPlaneException(Storage.Errors.ErrorCode.Unavailable, "the store cannot be reached", inner: cause);

            foreach (var crossed in new[] { serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(failure)), copier.Copy<Exception>(failure) })
            {
                var back = Assert.IsType<Storage.Errors.ControlPlaneException>(crossed);
                Assert.Equal(Storage.Errors.ErrorCode.Unavailable, back.Code);
                Assert.Equal(failure.Message, back.Message);
                Assert.Contains(cause.Message, back.InnerException?.Message ?? ""); // the cause, for the log
            }
        }
    }

    [Fact]
    public void WithinASilo_AMessageIsPassedWithoutACopy()
    {
        var copier = Services.GetRequiredService<DeepCopier>();
        var service = new Service { Metadata = new ObjectMeta { Name = "web" } };

        Assert.Same(service, copier.Copy(service));
    }
}
