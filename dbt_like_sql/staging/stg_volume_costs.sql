-- Per-volume cost from each allocation's pvs map; keys read "cluster=<c>:name=<pv>".
with volumes as (

    select
        cluster,
        window_start as hour_start,
        kind as allocation_kind,
        unnest(pvs) as pv

    from {{ source('raw', 'allocation') }}

),

final as (

    select
        cluster,
        hour_start,
        allocation_kind,
        coalesce(nullif(regexp_extract(pv.name, 'name=([^:]+)$', 1), ''), pv.name)
            as persistentvolume,
        cast(coalesce(pv.cost, 0) as decimal(38, 9)) as volume_cost

    from volumes

)

select * from final
