with source as (

    select * from {{ source('raw', 'inventory') }}

),

renamed as (

    select
        cluster,
        hour_start,
        object_kind,
        coalesce(namespace, '') as namespace,
        name,
        phase,
        storageclass,
        capacity_bytes / 1073741824.0 as capacity_gib,
        volume_name,
        claim_name,
        service_type,
        ready_endpoints,
        owner_kind,
        owner_name

    from source

)

select * from renamed
